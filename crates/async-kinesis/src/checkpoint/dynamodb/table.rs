//! The table: checking that it exists with our key schema, creating it on demand, and its
//! time-to-live setting.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use tokio::time::Instant;

use super::error::DynamoDbError;
use super::item::{APP_STREAM, EXPIRES_AT, SHARD_ID};
use crate::error::ErrorClass;

/// How long to wait for a new table to become ACTIVE (on-demand tables usually take seconds).
const ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(250);

/// Where the table lives and what it must look like.
#[derive(Debug, Clone)]
pub(super) struct Table {
    pub(super) client: Client,
    pub(super) name: String,
    /// Where requests go, for error messages.
    pub(super) endpoint: String,
    pub(super) create: bool,
    pub(super) ttl: bool,
}

/// What [`Table::ensure`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ensured {
    /// The table was there.
    Existed,
    /// This call created it.
    Created,
}

impl Table {
    /// Checks that the table exists, ACTIVE, with our key schema and the expected time-to-live
    /// setting; creates it (pay per request) when it is missing and creation is allowed.
    pub(super) async fn ensure(&self) -> Result<Ensured, DynamoDbError> {
        let ensured = match self.describe().await? {
            Some(table) => {
                self.check_key_schema(&table)?;
                if table.table_status() != Some(&TableStatus::Active) {
                    self.wait_active().await?;
                }
                Ensured::Existed
            }
            None if self.create => {
                self.create().await?;
                self.wait_active().await?;
                Ensured::Created
            }
            None => {
                return Err(DynamoDbError::TableMissing {
                    table: self.name.clone(),
                });
            }
        };
        self.ensure_ttl().await?;
        Ok(ensured)
    }

    /// The table's description, or `None` when it does not exist.
    async fn describe(&self) -> Result<Option<TableDescription>, DynamoDbError> {
        const OP: &str = "DescribeTable";
        match self
            .client
            .describe_table()
            .table_name(&self.name)
            .send()
            .await
        {
            Ok(out) => out.table.map(Some).ok_or_else(|| DynamoDbError::Client {
                operation: OP,
                class: ErrorClass::Unknown,
                source: "DescribeTable answered without a table description".into(),
            }),
            Err(err) => {
                let err = DynamoDbError::from_sdk(OP, &self.endpoint, err);
                if err.is_table_not_found() {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    fn check_key_schema(&self, table: &TableDescription) -> Result<(), DynamoDbError> {
        let type_of = |name: &str| {
            table
                .attribute_definitions()
                .iter()
                .find(|d| d.attribute_name() == name)
                .map_or("?", |d| d.attribute_type().as_str())
        };
        let keys: Vec<(&str, &str, &str)> = table
            .key_schema()
            .iter()
            .map(|k| {
                (
                    k.attribute_name(),
                    k.key_type().as_str(),
                    type_of(k.attribute_name()),
                )
            })
            .collect();
        if keys == [(APP_STREAM, "HASH", "S"), (SHARD_ID, "RANGE", "S")] {
            return Ok(());
        }
        let found = keys
            .iter()
            .map(|(name, kind, ty)| format!("{name} {kind} {ty}"))
            .collect::<Vec<_>>()
            .join(", ");
        Err(DynamoDbError::WrongKeySchema {
            table: self.name.clone(),
            found,
        })
    }

    async fn create(&self) -> Result<(), DynamoDbError> {
        const OP: &str = "CreateTable";
        let invalid = |e: aws_sdk_dynamodb::error::BuildError| DynamoDbError::Client {
            operation: OP,
            class: ErrorClass::Validation,
            source: Box::new(e),
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(invalid)
        };
        let key = |name: &str, kind| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(invalid)
        };
        let result = self
            .client
            .create_table()
            .table_name(&self.name)
            .attribute_definitions(attribute(APP_STREAM)?)
            .attribute_definitions(attribute(SHARD_ID)?)
            .key_schema(key(APP_STREAM, KeyType::Hash)?)
            .key_schema(key(SHARD_ID, KeyType::Range)?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match result {
            Ok(_) => {
                tracing::info!(table = %self.name, "created the DynamoDB checkpoint table");
                Ok(())
            }
            // Another worker is creating it at the same moment.
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(DynamoDbError::from_sdk(OP, &self.endpoint, err)),
        }
    }

    async fn wait_active(&self) -> Result<(), DynamoDbError> {
        let start = Instant::now();
        loop {
            let status = match self.describe().await? {
                Some(table) => {
                    self.check_key_schema(&table)?;
                    match table.table_status() {
                        Some(TableStatus::Active) => return Ok(()),
                        Some(status) => status.as_str().to_owned(),
                        None => "unknown".to_owned(),
                    }
                }
                // Just created: some implementations answer "not found" for a moment.
                None => "not yet visible".to_owned(),
            };
            if start.elapsed() >= ACTIVE_TIMEOUT {
                return Err(DynamoDbError::TableNotActive {
                    table: self.name.clone(),
                    status,
                    waited: start.elapsed(),
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Time to live must be on [`EXPIRES_AT`] when the store has one, and must not be there when
    /// it has none (items the store no longer refreshes would be deleted).
    async fn ensure_ttl(&self) -> Result<(), DynamoDbError> {
        let (status, attribute) = self.describe_ttl().await?;
        let on = matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        );
        let ours = attribute.as_deref() == Some(EXPIRES_AT);
        let mismatch = |detail: String| {
            Err(DynamoDbError::TtlMismatch {
                table: self.name.clone(),
                detail,
            })
        };
        match (self.ttl, on, ours) {
            (true, true, true) | (false, false, _) => Ok(()),
            (true, true, false) => mismatch(format!(
                "time to live is enabled on attribute {}, but this store keeps its expiry in \
                 {EXPIRES_AT}; use another table",
                attribute.as_deref().unwrap_or("?")
            )),
            (false, true, false) => Ok(()),
            (false, true, true) => mismatch(format!(
                "time to live is enabled on {EXPIRES_AT}, but this store was built without \
                 ttl_hours and would not keep it in the future: set ttl_hours as the other \
                 workers do, or disable time to live on the table"
            )),
            (true, false, _) if status == Some(TimeToLiveStatus::Disabling) => mismatch(
                "time to live is being disabled; it can be enabled again once that finished"
                    .to_owned(),
            ),
            (true, false, _) => self.enable_ttl().await,
        }
    }

    async fn describe_ttl(
        &self,
    ) -> Result<(Option<TimeToLiveStatus>, Option<String>), DynamoDbError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.name)
            .send()
            .await
            .map_err(|e| DynamoDbError::from_sdk("DescribeTimeToLive", &self.endpoint, e))?;
        let description = out.time_to_live_description();
        Ok((
            description.and_then(|d| d.time_to_live_status()).cloned(),
            description
                .and_then(|d| d.attribute_name())
                .map(str::to_owned),
        ))
    }

    async fn enable_ttl(&self) -> Result<(), DynamoDbError> {
        const OP: &str = "UpdateTimeToLive";
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(EXPIRES_AT)
            .build()
            .map_err(|e| DynamoDbError::Client {
                operation: OP,
                class: ErrorClass::Validation,
                source: Box::new(e),
            })?;
        let result = self
            .client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(spec)
            .send()
            .await;
        if let Err(err) = result {
            let err = DynamoDbError::from_sdk(OP, &self.endpoint, err);
            // Another worker may have enabled it in the meantime ("already enabled").
            match self.describe_ttl().await? {
                (Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling), Some(name))
                    if name == EXPIRES_AT => {}
                _ => return Err(err),
            }
        }
        Ok(())
    }
}
