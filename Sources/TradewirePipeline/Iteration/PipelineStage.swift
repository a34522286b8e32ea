/// The stages of one iteration, in order.
public enum PipelineStage: String, Sendable, CaseIterable, Comparable {
    case none, data, strategy, quant, risk, execution, audit

    /// Stages that do work (everything but `none`).
    public static let working: [PipelineStage] = [.data, .strategy, .quant, .risk, .execution, .audit]

    public static func < (lhs: PipelineStage, rhs: PipelineStage) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The six pipeline event types (PROTOCOL §4), in chain order.
public enum PipelineEvent: String, Sendable, CaseIterable {
    case dataReady = "data_ready"
    case signalsReady = "signals_ready"
    case validatedReady = "validated_ready"
    case approvedReady = "approved_ready"
    case executedReady = "executed_ready"
    case auditReady = "audit_ready"

    /// The stage whose completion this event announces.
    public var completedStage: PipelineStage {
        switch self {
        case .dataReady: .data
        case .signalsReady: .strategy
        case .validatedReady: .quant
        case .approvedReady: .risk
        case .executedReady: .execution
        case .auditReady: .audit
        }
    }
}
