//! Prices usage with the system model's prices, line by line.

use serde::Serialize;
use surge_profile::SystemModel;
use surge_profile::profile::CostSpec;
use surge_profile::system::Model;

use crate::optimize::OptimizationStep;
use crate::usage::{ModelUsage, Usage};

/// One line of the cost table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostLine {
    pub component: String,
    pub per_day: f64,
    pub per_month: f64,
    /// How the figure was reached, in the seed's terms.
    pub basis: String,
}

/// The priced usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostTable {
    pub lines: Vec<CostLine>,
    pub total_per_day: f64,
    pub total_per_month: f64,
    /// LLM lines / total.
    pub llm_share: f64,
    pub llm_per_day: f64,
    pub conversations_per_day: f64,
    pub per_conversation: f64,
    pub days_per_month: f64,
}

/// On-demand list price in dollars of `input` and `output` tokens of `model`, and of
/// `cache_read` input tokens read from its prompt cache.
pub fn token_price(model: &Model, input: f64, output: f64, cache_read: f64) -> f64 {
    let list = input / 1e6 * model.input_price_per_million.dollars()
        + output / 1e6 * model.output_price_per_million.dollars();
    if cache_read == 0.0 {
        return list;
    }
    let price = model
        .cache_read_price_per_million
        .unwrap_or(model.input_price_per_million);
    list + cache_read / 1e6 * price.dollars()
}

/// LLM dollars for one model's usage at the model's prices.
pub(crate) fn llm_cost(sys: &SystemModel, model: &str, u: &ModelUsage, discount: bool) -> f64 {
    let Some(m) = sys.bedrock.models.get(model) else {
        return 0.0;
    };
    let list = token_price(m, u.input_tokens, u.output_tokens, u.cache_read_tokens);
    if discount {
        list * (1.0 - sys.prices.provisioned_discount.fraction())
    } else {
        list
    }
}

/// Bedrock dollars of `usage`'s LLM calls at the system model's on-demand prices.
pub fn bedrock_spend(usage: &Usage, sys: &SystemModel) -> f64 {
    usage
        .llm
        .iter()
        .map(|(model, u)| llm_cost(sys, model, u, usage.provisioned_discount))
        .sum()
}

/// Prices `usage`; per-day figures are usage / days, per-month figures × `days_per_month`.
pub fn price(usage: &Usage, sys: &SystemModel, days_per_month: f64) -> CostTable {
    let p = &sys.prices;
    let days = usage.days.max(1e-12);
    let mut lines = Vec::new();
    let mut line = |component: &str, total: f64, basis: String| {
        let per_day = total / days;
        lines.push(CostLine {
            component: component.into(),
            per_day,
            per_month: per_day * days_per_month,
            basis,
        });
    };
    let mut llm_total = 0.0;
    for (model, u) in &usage.llm {
        let cost = llm_cost(sys, model, u, usage.provisioned_discount);
        llm_total += cost;
        let id = sys
            .bedrock
            .models
            .get(model)
            .map_or(model.as_str(), |m| &m.id);
        line(
            &format!("LLM {model}"),
            cost,
            format!(
                "{:.0} calls/day, {:.1}M input + {:.1}M output tokens/day ({id}){}",
                u.calls / days,
                u.input_tokens / days / 1e6,
                u.output_tokens / days / 1e6,
                if usage.provisioned_discount {
                    format!(", {} provisioned discount", p.provisioned_discount)
                } else {
                    String::new()
                }
            ),
        );
    }
    let vcpu_hours = usage.task_hours * usage.vcpu_per_task;
    let gb_hours = usage.task_hours * usage.memory_gb_per_task;
    line(
        "ECS Fargate orchestrator",
        vcpu_hours * p.fargate_vcpu_hour.dollars() + gb_hours * p.fargate_gb_hour.dollars(),
        format!(
            "{:.0} task-hours/day × ({} vCPU at {}/h + {} GB at {}/h)",
            usage.task_hours / days,
            usage.vcpu_per_task,
            p.fargate_vcpu_hour,
            usage.memory_gb_per_task,
            p.fargate_gb_hour
        ),
    );
    line(
        "DynamoDB memory",
        usage.dynamodb_write_units / 1e6 * p.dynamodb_write_million.dollars()
            + usage.dynamodb_read_units / 1e6 * p.dynamodb_read_million.dollars(),
        format!(
            "{:.0} WRU + {:.0} RRU/day on demand",
            usage.dynamodb_write_units / days,
            usage.dynamodb_read_units / days
        ),
    );
    line(
        "OpenSearch Serverless",
        usage.opensearch_ocu_hours * p.opensearch_ocu_hour.dollars(),
        format!(
            "{:.0} OCU-hours/day at {}",
            usage.opensearch_ocu_hours / days,
            p.opensearch_ocu_hour
        ),
    );
    line(
        "ElastiCache Redis",
        p.elasticache_month.dollars() / days_per_month * days,
        format!("{} per month", p.elasticache_month),
    );
    line(
        "API Gateway WebSocket",
        usage.gateway_connection_minutes * p.apigw_connection_minute.dollars()
            + usage.gateway_messages / 1e6 * p.apigw_message_million.dollars(),
        format!(
            "{:.0} connection-minutes + {:.0} messages/day",
            usage.gateway_connection_minutes / days,
            usage.gateway_messages / days
        ),
    );
    let lambda = match usage.lambda_flat_monthly {
        Some(monthly) => monthly / days_per_month * days,
        None => {
            usage.lambda_requests / 1e6 * p.lambda_request_million.dollars()
                + usage.lambda_gb_seconds * p.lambda_gb_second.dollars()
        }
    } + usage.lambda_provisioned_hours * p.lambda_provisioned_hour.dollars();
    line(
        "Lambda burst workers",
        lambda,
        match usage.lambda_flat_monthly {
            Some(m) => format!(
                "${m} per month on overflow, {:.0} provisioned environment-hours/day",
                usage.lambda_provisioned_hours / days
            ),
            None => format!(
                "{:.0} invocations, {:.0} GB-s, {:.0} provisioned environment-hours/day",
                usage.lambda_requests / days,
                usage.lambda_gb_seconds / days,
                usage.lambda_provisioned_hours / days
            ),
        },
    );
    for (name, monthly) in &p.fixed_monthly {
        line(
            name,
            monthly.dollars() / days_per_month * days,
            format!("{monthly} per month"),
        );
    }
    let total_per_day: f64 = lines.iter().map(|l| l.per_day).sum();
    let llm_per_day = llm_total / days;
    let conversations_per_day = usage.conversations / days;
    CostTable {
        total_per_month: total_per_day * days_per_month,
        llm_share: if total_per_day > 0.0 {
            llm_per_day / total_per_day
        } else {
            0.0
        },
        per_conversation: if conversations_per_day > 0.0 {
            total_per_day / conversations_per_day
        } else {
            0.0
        },
        total_per_day,
        llm_per_day,
        conversations_per_day,
        days_per_month,
        lines,
    }
}

/// Where the seed's own arithmetic differs from the arithmetic, for the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedNote {
    pub claim: String,
    pub computed: String,
}

/// The seed's Q35 claims that the unoptimized table and the optimization steps contradict.
pub fn seed_notes(steps: &[OptimizationStep], spec: &CostSpec) -> Vec<SeedNote> {
    let mut notes = Vec::new();
    let Some(table) = steps.first().map(|s| &s.table) else {
        return notes;
    };
    if let Some(tiered) = steps.iter().find(|s| s.switches.tiering) {
        if (tiered.table.llm_per_day - 720.0 * table.llm_per_day / 1_800.0).abs()
            > 0.05 * tiered.table.llm_per_day
        {
            notes.push(SeedNote {
                claim: "Q35: tiering 60% of calls to Haiku costs \"~$720/day\" (of $1,800)".into(),
                computed: format!(
                    "tiering brings ${:.0}/day down to ${:.0}/day ({:.0}% less, not 60%)",
                    table.llm_per_day,
                    tiered.table.llm_per_day,
                    (1.0 - tiered.table.llm_per_day / table.llm_per_day) * 100.0
                ),
            });
        }
    }
    if (table.llm_share - 0.75).abs() > 0.05 {
        notes.push(SeedNote {
            claim: "Q35: \"LLM cost is ~75% of total\"".into(),
            computed: format!(
                "the LLM is {:.1}% of this total (${:.0} of ${:.0}/month)",
                table.llm_share * 100.0,
                table.llm_per_day * table.days_per_month,
                table.total_per_month
            ),
        });
    }
    if table.per_conversation < 0.5 {
        notes.push(SeedNote {
            claim: "Q35: \"Unoptimized: ~$0.55/conversation\"".into(),
            computed: format!(
                "${:.0}/month over {:.1} M conversations/month is ${:.4} per conversation",
                table.total_per_month,
                spec.conversations_per_day * spec.days_per_month / 1e6,
                table.per_conversation
            ),
        });
    }
    notes
}
