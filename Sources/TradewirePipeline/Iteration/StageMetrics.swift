import CoreMetrics
import TradewireBus

/// What the pipeline records through swift-metrics (a no-op until the executable
/// bootstraps a metrics system): each stage's time and each handler call's outcome.
enum StageMetrics {
    /// `tradewire_stage_seconds{stage}`, one timer per stage, created on first use.
    private static let timers: [PipelineStage: CoreMetrics.Timer] = Dictionary(
        uniqueKeysWithValues: PipelineStage.working.map {
            ($0, CoreMetrics.Timer(label: MetricName.stageSeconds, dimensions: [("stage", $0.rawValue)]))
        })

    static func seconds(_ stage: PipelineStage) -> CoreMetrics.Timer {
        timers[stage] ?? CoreMetrics.Timer(label: MetricName.stageSeconds, dimensions: [("stage", stage.rawValue)])
    }

    /// Counts one handler call in `tradewire_stage_calls_total{stage,name,outcome}` (outcome:
    /// `ok` or the failure's reason). Calls are per iteration, not per event: the counter is
    /// looked up by its labels each time.
    static func call(_ stage: PipelineStage, _ name: String, outcome: String) {
        guard MetricsRecording.isEnabled else { return }
        CoreMetrics.Counter(
            label: MetricName.stageCalls,
            dimensions: [("stage", stage.rawValue), ("name", name), ("outcome", outcome)]
        ).increment()
    }
}
