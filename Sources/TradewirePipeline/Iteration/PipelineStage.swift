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

    /// The pipeline event named `type`, if it is one. Every client publish asks: a type of
    /// another length, or not ending like every name (`_ready`), is refused without hashing.
    public static func named(_ type: String) -> PipelineEvent? {
        let utf8 = type.utf8
        guard nameLengths.contains(utf8.count), utf8.last == UInt8(ascii: "y") else { return nil }
        return byName[type]
    }

    private static let byName = Dictionary(uniqueKeysWithValues: allCases.map { ($0.rawValue, $0) })
    private static let nameLengths: ClosedRange<Int> = {
        let lengths = allCases.map(\.rawValue.utf8.count)
        precondition(
            allCases.allSatisfy { $0.rawValue.hasSuffix("_ready") }, "named(_:) expects every name to end in _ready")
        return lengths.min()!...lengths.max()!
    }()

    /// Whether a client's event of this type starts an iteration (PROTOCOL §9): data,
    /// strategy and quant output may come from outside; risk's, execution's and audit's may
    /// not, so nothing reaches the broker without passing risk.
    public var startsIteration: Bool {
        switch self {
        case .dataReady, .signalsReady, .validatedReady: true
        case .approvedReady, .executedReady, .auditReady: false
        }
    }

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
