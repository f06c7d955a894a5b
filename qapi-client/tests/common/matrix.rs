//! The read-only query matrix run against real QEMUs: typed commands whose
//! replies must decode.  None of them changes the VM.

use qapi_client::{Error, Qmp};
use qapi_types::commands as c;

/// One command's outcome: its wire name and a one-line summary of the
/// typed reply, or the error.
pub struct Outcome {
    pub command: &'static str,
    pub result: Result<String, Error>,
}

fn name_of<C: qapi_types::Command>(_: &C) -> &'static str {
    C::NAME
}

/// Runs every command of the matrix on `qmp`, typed.
pub async fn run(qmp: &Qmp) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    macro_rules! typed {
        ($($command:expr),* $(,)?) => {
            $({
                let command = $command;
                let result = qmp.execute(&command).await.map(|reply| {
                    let text = format!("{reply:?}");
                    text.chars().take(60).collect()
                });
                outcomes.push(Outcome { command: name_of(&command), result });
            })*
        };
    }
    typed!(
        c::QueryStatus {},
        c::QueryVersion {},
        c::QueryName {},
        c::QueryUuid {},
        c::QueryKvm {},
        c::QueryChardev {},
        c::QueryChardevBackends {},
        c::QueryBlock {},
        c::QueryBlockstats {
            query_nodes: Some(true)
        },
        c::QueryNamedBlockNodes { flat: Some(false) },
        c::QueryBlockJobs {},
        c::QueryJobs {},
        c::QueryMigrate {},
        c::QueryMigrateCapabilities {},
        c::QueryMigrateParameters {},
        c::QueryCpusFast {},
        c::QueryHotpluggableCpus {},
        c::QueryMemoryDevices {},
        c::QueryMemorySizeSummary {},
        c::QueryMachines { compat_props: None },
        c::QueryCurrentMachine {},
        c::QueryTarget {},
        c::QueryCpuDefinitions {},
        c::QueryIothreads {},
        c::QueryPci {},
        c::QueryMice {},
        c::QueryVnc {},
        c::QueryVncServers {},
        c::QueryDisplayOptions {},
        c::QueryTpm {},
        c::QueryTpmModels {},
        c::QueryTpmTypes {},
        c::QueryAcpiOspmStatus {},
        c::QueryDump {},
        c::QueryDumpGuestMemoryCapability {},
        c::QueryFdsets {},
        c::QueryCommandLineOptions { option: None },
        c::QueryYank {},
        c::QueryReplay {},
        c::QueryColoStatus {},
        c::QueryXenReplicationStatus {},
        c::QueryDirtyRate {
            calc_time_unit: None
        },
        c::QueryVcpuDirtyLimit {},
        c::QueryStatsSchemas { provider: None },
        c::QueryMemdev {},
        c::QueryPrManagers {},
        c::QueryBlockExports {},
        c::QueryCryptodev {},
        c::QueryAudiodevs {},
        c::QueryAccelerators {},
        c::QomListTypes {
            implements: Some("device".into()),
            r#abstract: None
        },
        c::QomList {
            path: "/machine".into()
        },
        c::QueryCommands {},
        c::QueryQmpSchema {},
    );
    outcomes
}
