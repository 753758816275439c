//! Creating the AWS resources the SAM template declares, on moto, for the tests: the table
//! (keys, GSI, TTL) and a queue with its dead-letter queue. Test setup only: in production
//! the template creates them.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_sqs::types::QueueAttributeName;
use classy_sync_aws::dynamo::{ATTR_EXPIRES_AT, ATTR_GSI1, ATTR_PK, ATTR_SK, GSI1_INDEX};
use std::time::Duration;

/// Why a resource could not be created (the operation and the SDK's error).
pub type SetupError = String;

fn setup_error(op: &str, e: impl std::fmt::Display) -> SetupError {
    format!("{op}: {e}")
}

/// Creates the table as the SAM template declares it (on-demand billing, GSI `gsi1`, TTL
/// on `expires_at`) and waits until it is active. An existing table is left as it is
/// (TTL is still switched on), so local setup can run twice.
pub async fn create_table(client: &aws_sdk_dynamodb::Client, name: &str) -> Result<(), SetupError> {
    let attr = |n: &str| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| setup_error("build", e))
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| setup_error("build", e))
    };
    let gsi = GlobalSecondaryIndex::builder()
        .index_name(GSI1_INDEX)
        .key_schema(key(ATTR_GSI1, KeyType::Hash)?)
        .key_schema(key(ATTR_SK, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| setup_error("build", e))?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(ATTR_PK)?)
        .attribute_definitions(attr(ATTR_SK)?)
        .attribute_definitions(attr(ATTR_GSI1)?)
        .key_schema(key(ATTR_PK, KeyType::Hash)?)
        .key_schema(key(ATTR_SK, KeyType::Range)?)
        .global_secondary_indexes(gsi)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) => {}
        Err(e) => return Err(setup_error("CreateTable", DisplayErrorContext(&e))),
    }
    for _ in 0..600 {
        let d = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| setup_error("DescribeTable", DisplayErrorContext(&e)))?;
        if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ttl = client
        .describe_time_to_live()
        .table_name(name)
        .send()
        .await
        .map_err(|e| setup_error("DescribeTimeToLive", DisplayErrorContext(&e)))?;
    let enabled = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status())
        .is_some_and(|s| matches!(s, TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling));
    if !enabled {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(ATTR_EXPIRES_AT)
                    .build()
                    .map_err(|e| setup_error("build", e))?,
            )
            .send()
            .await
            .map_err(|e| setup_error("UpdateTimeToLive", DisplayErrorContext(&e)))?;
    }
    Ok(())
}

/// Creates a queue named `name` (FIFO when it ends with `.fifo`) and its dead-letter
/// queue `<name>-dlq[.fifo]`, with `maxReceiveCount = max_receives` and the default
/// visibility timeout `visibility_secs`. Returns `(queue_url, dlq_url)`.
pub async fn create_queues(
    client: &aws_sdk_sqs::Client,
    name: &str,
    max_receives: u32,
    visibility_secs: u32,
) -> Result<(String, String), SetupError> {
    let fifo = name.ends_with(".fifo");
    let base = name.trim_end_matches(".fifo");
    let dlq_name = if fifo {
        format!("{base}-dlq.fifo")
    } else {
        format!("{base}-dlq")
    };
    let mut dlq = client.create_queue().queue_name(&dlq_name);
    if fifo {
        dlq = dlq.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let dlq_url = dlq
        .send()
        .await
        .map_err(|e| setup_error("CreateQueue", DisplayErrorContext(&e)))?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| SetupError::from("CreateQueue: no queue URL"))?;
    let arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| setup_error("GetQueueAttributes", DisplayErrorContext(&e)))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| SetupError::from("GetQueueAttributes: no QueueArn"))?;
    let policy = serde_json::json!({
        "deadLetterTargetArn": arn,
        "maxReceiveCount": max_receives.to_string(),
    });
    let mut main = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            visibility_secs.to_string(),
        );
    if fifo {
        main = main.attributes(QueueAttributeName::FifoQueue, "true");
    }
    let url = main
        .send()
        .await
        .map_err(|e| setup_error("CreateQueue", DisplayErrorContext(&e)))?
        .queue_url()
        .map(str::to_owned)
        .ok_or_else(|| SetupError::from("CreateQueue: no queue URL"))?;
    Ok((url, dlq_url))
}
