//! Recipients intake: numbers from a create body or a CSV upload, parsed
//! row by row and written in batches while the upload is still arriving.
//! Memory stays bounded by two batches (the one being written and the one
//! being parsed), whatever the size of the upload.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use mangwale_core::campaign::{CampaignId, CampaignState};
use mangwale_core::csv::CsvReader;
use mangwale_core::{E164, Language};
use mangwale_store::{Intake, NewRecipient, Store, StoreError};
use serde::Serialize;
use tokio::task::JoinHandle;

/// Recipients per store transaction: large enough that the per-commit
/// cost vanishes, small enough that a batch is a few hundred kilobytes.
pub const BATCH: usize = 5_000;

/// The most invalid rows a report lists (the total is always counted).
pub const MAX_LISTED_ERRORS: usize = 1_000;

/// What an intake did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IntakeReport {
    /// Rows read (the header excluded).
    pub rows: u64,
    pub accepted: u64,
    /// Numbers already in the campaign or given twice.
    pub duplicates: u64,
    pub invalid: u64,
    /// The first [`MAX_LISTED_ERRORS`] invalid rows.
    pub errors: Vec<RowError>,
}

/// An invalid row: its line in the CSV (the header is line 1), or its
/// index in `phone_numbers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    pub reason: String,
}

impl IntakeReport {
    fn invalid(&mut self, error: RowError) {
        self.invalid += 1;
        if self.errors.len() < MAX_LISTED_ERRORS {
            self.errors.push(error);
        }
    }

    fn added(&mut self, accepted: u64, duplicates: u64) {
        self.accepted += accepted;
        self.duplicates += duplicates;
    }
}

/// Why an intake stopped.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("campaign not found")]
    NoCampaign,
    /// The campaign takes no recipients in this state; what was accepted
    /// before it changed stays.
    #[error("the campaign is {}: recipients can be added only while it is created or paused", .state.as_str())]
    Closed { state: CampaignState, report: IntakeReport },
    /// The header row is missing or has no `phone` column.
    #[error("{0}")]
    Header(String),
    #[error("the upload could not be read: {0}")]
    Body(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which column holds what, from the header row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvColumns {
    phone: usize,
    name: Option<usize>,
    language: Option<usize>,
    /// Every other column: a template variable, by its header.
    variables: Vec<(usize, String)>,
}

impl CsvColumns {
    /// Reads the header: `phone` (or `phone_number`, `mobile`, `number`),
    /// optional `name` and `language`; other columns are variables.
    /// Headers are matched without case, spaces and a leading BOM.
    pub fn from_header(fields: &[String]) -> Result<CsvColumns, String> {
        let mut phone = None;
        let mut name = None;
        let mut language = None;
        let mut variables = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for (i, raw) in fields.iter().enumerate() {
            let header = raw.trim_start_matches('\u{feff}').trim().to_ascii_lowercase().replace(' ', "_");
            if header.is_empty() {
                continue;
            }
            if !seen.insert(header.clone()) {
                return Err(format!("the header names column '{header}' twice"));
            }
            match header.as_str() {
                "phone" | "phone_number" | "mobile" | "number" if phone.is_none() => phone = Some(i),
                "name" => name = Some(i),
                "language" | "lang" => language = Some(i),
                _ => variables.push((i, header)),
            }
        }
        let phone = phone.ok_or("the header row has no 'phone' column")?;
        Ok(CsvColumns { phone, name, language, variables })
    }

    /// One data row as a recipient, or why it is not one.
    pub fn recipient(&self, fields: &[String]) -> Result<NewRecipient, String> {
        let cell = |i: usize| fields.get(i).map(|f| f.trim()).filter(|f| !f.is_empty());
        let phone = cell(self.phone).ok_or("no phone number")?;
        let phone = E164::parse(phone).map_err(|e| format!("phone: {e}"))?;
        let language = match self.language.and_then(cell) {
            None => None,
            Some(l) => Some(l.parse::<Language>().map_err(|e| format!("language: {e}"))?),
        };
        let mut variables = BTreeMap::new();
        for (i, key) in &self.variables {
            if let Some(value) = cell(*i) {
                variables.insert(key.clone(), value.to_string());
            }
        }
        Ok(NewRecipient { phone, name: self.name.and_then(cell).map(str::to_string), language, variables })
    }
}

/// Writes batches to the store one at a time, the next being parsed while
/// the last is written.
struct Writer {
    store: Arc<dyn Store>,
    id: CampaignId,
    now: DateTime<Utc>,
    pending: Option<JoinHandle<Result<Intake, StoreError>>>,
    report: IntakeReport,
}

impl Writer {
    async fn settle(&mut self) -> Result<(), IntakeError> {
        let Some(task) = self.pending.take() else { return Ok(()) };
        let intake = task.await.map_err(|e| IntakeError::Store(StoreError::Unavailable(e.to_string())))??;
        match intake {
            Intake::Added { accepted, duplicates } => {
                self.report.added(accepted, duplicates);
                Ok(())
            }
            Intake::Closed(state) => Err(IntakeError::Closed { state, report: self.report.clone() }),
            Intake::NoCampaign => Err(IntakeError::NoCampaign),
        }
    }

    async fn write(&mut self, batch: Vec<NewRecipient>) -> Result<(), IntakeError> {
        self.settle().await?;
        if batch.is_empty() {
            return Ok(());
        }
        let (store, id, now) = (self.store.clone(), self.id.clone(), self.now);
        self.pending = Some(tokio::spawn(async move { store.add_recipients(&id, batch, now).await }));
        Ok(())
    }

    async fn finish(mut self) -> Result<IntakeReport, IntakeError> {
        self.settle().await?;
        Ok(self.report)
    }
}

/// Adds `phone_numbers` of a create body; errors name each number's index.
pub async fn from_numbers(
    store: Arc<dyn Store>,
    id: &CampaignId,
    numbers: &[String],
    now: DateTime<Utc>,
) -> Result<IntakeReport, IntakeError> {
    let mut w = Writer { store, id: id.clone(), now, pending: None, report: IntakeReport::default() };
    let mut batch = Vec::with_capacity(BATCH.min(numbers.len()));
    for (index, raw) in numbers.iter().enumerate() {
        w.report.rows += 1;
        match E164::parse(raw) {
            Ok(phone) => batch.push(NewRecipient { phone, name: None, language: None, variables: BTreeMap::new() }),
            Err(e) => w.report.invalid(RowError { line: None, index: Some(index as u64), reason: e.0 }),
        }
        if batch.len() == BATCH {
            w.write(std::mem::take(&mut batch)).await?;
        }
    }
    w.write(batch).await?;
    w.finish().await
}

/// Streams a CSV upload into the campaign.
pub async fn from_csv(
    store: Arc<dyn Store>,
    id: &CampaignId,
    body: Body,
    now: DateTime<Utc>,
) -> Result<IntakeReport, IntakeError> {
    let mut w = Writer { store, id: id.clone(), now, pending: None, report: IntakeReport::default() };
    let mut stream = body.into_data_stream();
    let mut reader = CsvReader::new();
    let mut columns: Option<CsvColumns> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut ended = false;
    while !ended {
        match stream.next().await {
            Some(Ok(chunk)) => reader.push(&chunk),
            Some(Err(e)) => return Err(IntakeError::Body(e.to_string())),
            None => {
                reader.finish();
                ended = true;
            }
        }
        while let Some(record) = reader.next() {
            let Some(cols) = &columns else {
                let fields = record.fields.map_err(|e| IntakeError::Header(format!("the header row: {e}")))?;
                columns = Some(CsvColumns::from_header(&fields).map_err(IntakeError::Header)?);
                continue;
            };
            w.report.rows += 1;
            let line = Some(record.line);
            match record.fields.and_then(|f| cols.recipient(&f)) {
                Ok(r) => batch.push(r),
                Err(reason) => w.report.invalid(RowError { line, index: None, reason }),
            }
            if batch.len() == BATCH {
                w.write(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).await?;
            }
        }
    }
    if columns.is_none() {
        return Err(IntakeError::Header("the upload is empty: a header row with 'phone' is required".into()));
    }
    w.write(batch).await?;
    w.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_header_maps_phone_name_language_and_variables() {
        let cols =
            CsvColumns::from_header(&strings(&["\u{feff}Phone", "Name", "language", "City", "Discount Code"])).unwrap();
        let r = cols.recipient(&strings(&["098765 43210", " Asha ", "mr", "Nashik", ""])).unwrap();
        assert_eq!(r.phone.as_str(), "+919876543210");
        assert_eq!(r.name.as_deref(), Some("Asha"));
        assert_eq!(r.language, Some(Language::Mr));
        assert_eq!(r.variables.len(), 1);
        assert_eq!(r.variables["city"], "Nashik");
        assert!(cols.recipient(&strings(&["12", "x"])).unwrap_err().starts_with("phone:"));
        assert_eq!(cols.recipient(&strings(&[""])).unwrap_err(), "no phone number");
        assert!(cols.recipient(&strings(&["9876543210", "", "fr"])).unwrap_err().starts_with("language:"));
        assert!(CsvColumns::from_header(&strings(&["name", "city"])).unwrap_err().contains("'phone'"));
        assert!(CsvColumns::from_header(&strings(&["phone", "city", "City"])).unwrap_err().contains("twice"));
    }
}
