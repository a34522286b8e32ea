/// Why an iteration produced no result.
public enum PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The data stage produced nothing for any symbol.
    case noMarketData(iteration: Int, iterationID: String, errors: [StageError])
    /// The iteration passed its deadline; `stage` is the last stage that finished.
    case timeout(iteration: Int, iterationID: String, stage: PipelineStage)

    public var description: String {
        switch self {
        case .noMarketData(let iteration, _, let errors):
            let reasons = errors.prefix(3).map { "\($0.symbol ?? "?"): \($0.message)" }.joined(separator: "; ")
            return "iteration \(iteration): no market data for any symbol" + (reasons.isEmpty ? "" : " (\(reasons))")
        case .timeout(let iteration, _, let stage):
            return "iteration \(iteration) exceeded its deadline after stage \(stage.rawValue)"
        }
    }
}
