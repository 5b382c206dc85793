//! An SQL step's summary (`sql: { rows, explain }`): the rows from its `sql_rows` counter, the
//! plan from `explain.json` (the start's, and the end's when it changed).

use super::aggregate::StepAgg;
use crate::recorder::Count;
use crate::rundir::explain::{ExplainFile, ExplainRecord};
use crate::rundir::summary::{ExplainSummary, SqlSummary, Summary};

/// `None` for a step that is not an SQL step (it has no `sql_rows` counter).
pub(super) fn summary(s: &StepAgg) -> Option<SqlSummary> {
    let rows = *s.counters.get(&Count::SqlRows.name())?;
    Some(SqlSummary { rows, explain: None })
}

fn brief(r: &ExplainRecord) -> ExplainSummary {
    ExplainSummary {
        plan: r.top.clone(),
        index_used: r.index_used,
        seq_scan_tables: r.seq_scan_tables.clone(),
        large_seq_scans: r.large_seq_scans.clone(),
        indexes: r.indexes.clone(),
        total_cost: r.total_cost,
        at_end: None,
    }
}

/// Puts each EXPLAINed statement's plan on its step in every phase (a transaction's
/// statements on `<step>:<statement>`).
pub(super) fn attach_explain(summary: &mut Summary, file: &ExplainFile) {
    for p in &mut summary.phases {
        for st in &mut p.steps {
            let Some(sql) = st.sql.as_mut() else { continue };
            let Some(start) = file.at_start.iter().find(|r| r.step == st.name) else {
                continue;
            };
            let mut e = brief(start);
            if let Some(end) = file
                .at_end
                .iter()
                .find(|r| r.step == start.step && r.statement == start.statement)
            {
                let end = brief(end);
                if (end.plan.as_str(), end.index_used, &end.seq_scan_tables)
                    != (e.plan.as_str(), e.index_used, &e.seq_scan_tables)
                {
                    e.at_end = Some(Box::new(end));
                }
            }
            sql.explain = Some(e);
        }
    }
}
