//! Rules a system model must satisfy beyond its types.
//!
//! Types catch a `"25k"` where a whole number belongs; these rules catch numbers that
//! parse but describe no real system (a minimum above the maximum, a zero rate, a tier
//! pointing at a model that does not exist). Each problem is a dotted key inside the
//! system model and a message; the loader decides which file the key lives in.

use crate::system::SystemModel;
use crate::units::Rate;

/// Every problem found, as (dotted key, message).
pub fn system_problems(s: &SystemModel) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut positive_rate = |key: &str, r: &Rate| {
        if r.per_second() <= 0.0 {
            out.push((
                key.into(),
                format!("must be greater than zero, found \"{r}\""),
            ));
        }
    };
    let g = &s.gateway;
    positive_rate("gateway.per_user_rate", &g.per_user_rate);
    positive_rate("gateway.account_rate", &g.account_rate);
    positive_rate("gateway.connect_rate", &g.connect_rate);
    let m = &s.memory;
    positive_rate("memory.partition_writes", &m.partition_writes);
    positive_rate("memory.partition_reads", &m.partition_reads);
    positive_rate("memory.table_max_writes", &m.table_max_writes);
    positive_rate("memory.table_max_reads", &m.table_max_reads);
    positive_rate("memory.new_table_writes", &m.new_table_writes);
    positive_rate("memory.new_table_reads", &m.new_table_reads);
    for (name, model) in &s.bedrock.models {
        positive_rate(
            &format!("bedrock.models.{name}.output_rate"),
            &model.output_rate,
        );
        if let Some(prefill) = &model.prefill_rate {
            positive_rate(&format!("bedrock.models.{name}.prefill_rate"), prefill);
        }
    }

    let mut check = |ok: bool, key: &str, msg: String| {
        if !ok {
            out.push((key.into(), msg));
        }
    };
    for (key, d) in [
        ("gateway.max_connection", g.max_connection),
        ("gateway.idle_timeout", g.idle_timeout),
    ] {
        check(
            d.as_nanos() > 0,
            key,
            "must be longer than zero (the gateway closes connections after it)".into(),
        );
    }
    check(
        g.chunk_tokens > 0,
        "gateway.chunk_tokens",
        "must be at least 1 (output tokens per @connections post)".into(),
    );
    let o = &s.orchestrator;
    check(
        o.min_tasks <= o.max_tasks,
        "orchestrator.min_tasks",
        format!(
            "min_tasks ({}) is above max_tasks ({})",
            o.min_tasks, o.max_tasks
        ),
    );
    check(
        o.max_tasks >= 1,
        "orchestrator.max_tasks",
        "at least one task is needed".into(),
    );
    check(
        (o.min_tasks..=o.max_tasks).contains(&o.initial_tasks),
        "orchestrator.initial_tasks",
        format!(
            "initial_tasks ({}) must lie between min_tasks ({}) and max_tasks ({})",
            o.initial_tasks, o.min_tasks, o.max_tasks
        ),
    );
    check(
        o.workers_per_task >= 1,
        "orchestrator.workers_per_task",
        "at least one worker per task is needed".into(),
    );
    check(
        o.vcpu_per_task > 0.0,
        "orchestrator.vcpu_per_task",
        format!("must be greater than zero, found {}", o.vcpu_per_task),
    );
    let a = &o.autoscaling;
    check(
        a.target_cpu.fraction() > 0.0,
        "orchestrator.autoscaling.target_cpu",
        "must be greater than 0%".into(),
    );
    check(
        a.period.as_nanos() > 0,
        "orchestrator.autoscaling.period",
        "must be longer than zero".into(),
    );
    check(
        a.scale_out_datapoints >= 1,
        "orchestrator.autoscaling.scale_out_datapoints",
        "at least one datapoint is needed".into(),
    );
    check(
        a.scale_in_datapoints >= 1,
        "orchestrator.autoscaling.scale_in_datapoints",
        "at least one datapoint is needed".into(),
    );
    let b = &s.burst;
    check(
        b.scale_step >= 1,
        "burst.scale_step",
        "at least one environment per step is needed".into(),
    );
    check(
        b.scale_interval.as_nanos() > 0,
        "burst.scale_interval",
        "must be longer than zero".into(),
    );
    check(
        b.provisioned <= b.account_concurrency,
        "burst.provisioned",
        format!(
            "provisioned concurrency ({}) exceeds the account limit ({})",
            b.provisioned, b.account_concurrency
        ),
    );
    check(
        m.partitions >= 1,
        "memory.partitions",
        "at least one partition is needed".into(),
    );
    check(
        m.item_size.bytes() > 0,
        "memory.item_size",
        "must be larger than zero".into(),
    );
    check(
        (0.0..=1.0).contains(&s.semantic_cache.threshold),
        "semantic_cache.threshold",
        format!(
            "a cosine similarity lies between 0 and 1, found {}",
            s.semantic_cache.threshold
        ),
    );
    check(
        s.prompt.chars_per_token > 0.0,
        "prompt.chars_per_token",
        format!(
            "must be greater than zero, found {}",
            s.prompt.chars_per_token
        ),
    );
    let models = &s.bedrock.models;
    let known = || models.keys().cloned().collect::<Vec<_>>().join(", ");
    for (key, name) in [
        ("bedrock.fast_model", &s.bedrock.fast_model),
        ("bedrock.smart_model", &s.bedrock.smart_model),
    ] {
        check(
            models.contains_key(name),
            key,
            format!("unknown model \"{name}\"; the models are {}", known()),
        );
    }
    for (name, model) in models {
        check(
            model.unit_tokens_per_minute > 0 || model.provisioned_units == 0,
            &format!("bedrock.models.{name}.unit_tokens_per_minute"),
            "provisioned units need a tokens-per-minute rate per unit".into(),
        );
        check(
            model.max_concurrency != Some(0),
            &format!("bedrock.models.{name}.max_concurrency"),
            "at least one call must be served at once (leave the key out for no limit)".into(),
        );
        check(
            model.output_burndown >= 1.0 && model.output_burndown.is_finite(),
            &format!("bedrock.models.{name}.output_burndown"),
            format!(
                "an output token counts at least once against the quota, found {}",
                model.output_burndown
            ),
        );
    }
    for (name, intent) in &s.intents {
        check(
            intent.max_tokens >= 1,
            &format!("intents.{name}.max_tokens"),
            "at least one output token is needed".into(),
        );
        check(
            !intent.texts.is_empty() && intent.texts.iter().all(|t| !t.trim().is_empty()),
            &format!("intents.{name}.texts"),
            "give at least one sample user text, none of them empty".into(),
        );
    }
    check(
        !s.stores.is_empty(),
        "stores",
        "at least one store is needed".into(),
    );
    out
}
