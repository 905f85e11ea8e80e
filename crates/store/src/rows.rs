//! Row mapping shared by the SQLite and PostgreSQL implementations, for the
//! tables whose columns decode the same way on both (text and integers).

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::calls::{CallAttempt, CallState, ExotelRequestLog};
use crate::{Result, StoreError, from_ms};

fn text<'r, R: Row>(row: &'r R, column: &'r str) -> Result<String>
where
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(row.try_get(column)?)
}

fn optional_text<'r, R: Row>(row: &'r R, column: &'r str) -> Result<Option<String>>
where
    &'r str: ColumnIndex<R>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(row.try_get(column)?)
}

fn integer<'r, R: Row>(row: &'r R, column: &'r str) -> Result<Option<i64>>
where
    &'r str: ColumnIndex<R>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(row.try_get(column)?)
}

fn required_integer<'r, R: Row>(row: &'r R, column: &'r str) -> Result<i64>
where
    &'r str: ColumnIndex<R>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    integer(row, column)?.ok_or_else(|| StoreError::Corrupt(format!("{column} is null")))
}

pub(crate) fn call_from_row<'r, R: Row>(row: &'r R) -> Result<CallAttempt>
where
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let state = text(row, "state")?;
    Ok(CallAttempt {
        id: text(row, "id")?,
        call_sid: optional_text(row, "call_sid")?,
        purpose: text(row, "purpose")?,
        order_id: optional_text(row, "order_id")?,
        escalation_id: optional_text(row, "escalation_id")?,
        party: optional_text(row, "party")?,
        to_masked: text(row, "to_masked")?,
        state: CallState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("call state {state}")))?,
        detail: optional_text(row, "detail")?,
        created_at: from_ms(required_integer(row, "created_at")?),
        updated_at: from_ms(required_integer(row, "updated_at")?),
    })
}

pub(crate) fn request_log_from_row<'r, R: Row>(row: &'r R) -> Result<ExotelRequestLog>
where
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    Ok(ExotelRequestLog {
        endpoint: text(row, "endpoint")?,
        method: text(row, "method")?,
        attempt: required_integer(row, "attempt")? as u32,
        http_status: integer(row, "http_status")?.map(|s| s as u16),
        outcome: text(row, "outcome")?,
        code: integer(row, "code")?,
        message: optional_text(row, "message")?,
        sid: optional_text(row, "sid")?,
        custom_field: optional_text(row, "custom_field")?,
        duration_ms: required_integer(row, "duration_ms")? as u64,
        at: from_ms(required_integer(row, "at")?),
    })
}
