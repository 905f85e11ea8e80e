//! Reading a provider's answer with a size cap: a misbehaving or hostile
//! endpoint cannot make us buffer an unbounded body.

use bytes::{Bytes, BytesMut};

/// The cap for answers that are small JSON documents (Exotel, WhatsApp,
/// push): 1 MiB, far above any documented answer.
pub const DEFAULT_LIMIT: usize = 1024 * 1024;

/// Why an answer's body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body (or its announced `Content-Length`) is over the cap; the
    /// rest was not read.
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The connection failed while reading.
    #[error("the answer could not be read: {0}")]
    Read(reqwest::Error),
}

impl BodyError {
    /// The message a client puts in its own error, describing a read failure
    /// its own way (without URLs, with causes).
    pub fn describe(self, read: impl FnOnce(reqwest::Error) -> String) -> String {
        match self {
            BodyError::Read(e) => read(e),
            too_large => too_large.to_string(),
        }
    }
}

/// Reads the whole body of `response`, refusing more than `limit` bytes.
pub async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Read)? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve(body: &'static [u8], chunked: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let route = axum::routing::get(move || async move {
            if chunked {
                // No Content-Length: the cap must hold while streaming.
                let stream = futures_stream(body);
                axum::body::Body::from_stream(stream)
            } else {
                axum::body::Body::from(body)
            }
        });
        tokio::spawn(async move { axum::serve(listener, axum::Router::new().route("/", route)).await.unwrap() });
        url
    }

    fn futures_stream(
        body: &'static [u8],
    ) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        futures::stream::iter(body.chunks(1000).map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>())
    }

    #[tokio::test]
    async fn bodies_within_the_cap_are_read_whole_and_larger_ones_refused() {
        static BIG: [u8; 10_000] = [b'x'; 10_000];
        let http = reqwest::Client::new();
        for chunked in [false, true] {
            let url = serve(&BIG, chunked).await;
            let body = read_capped(http.get(&url).send().await.unwrap(), 10_000).await.unwrap();
            assert_eq!(body.len(), 10_000);
            let e = read_capped(http.get(&url).send().await.unwrap(), 9_999).await.unwrap_err();
            assert!(matches!(e, BodyError::TooLarge { limit: 9_999 }), "chunked {chunked}: {e}");
            assert_eq!(e.describe(|_| unreachable!()), "the answer is larger than 9999 bytes");
        }
    }
}
