/// When the kill switch halts trading by itself (PROTOCOL §12; both off by default).
public struct HaltTriggers: Sendable, Equatable {
    /// Halt when equity falls this many percent below its running peak: (0, 100].
    public var drawdownPercent: Double?
    /// Halt after this many iterations in a row with errors: 1...``maximumErrorIterations``.
    public var errorIterations: Int?

    public static let maximumErrorIterations = 1_000_000

    public init(drawdownPercent: Double? = nil, errorIterations: Int? = nil) {
        self.drawdownPercent = drawdownPercent
        self.errorIterations = errorIterations
    }

    /// True when neither trigger is set.
    public var isEmpty: Bool { drawdownPercent == nil && errorIterations == nil }
}

/// What the halt triggers remember between iterations: the running peak of equity and the
/// iterations in a row that had errors. A value: the pipeline keeps it (and saves it with
/// the trading state, so a restart keeps the drawdown's baseline).
public struct HaltWatch: Sendable, Equatable {
    /// The highest equity seen while the drawdown trigger is on (nil before the first).
    public var peakEquity: Double?
    /// Finished iterations in a row with errors, up to now.
    public var errorsInARow = 0

    /// The longest error message quoted in a halt reason.
    static let maximumQuotedError = 200

    public init(peakEquity: Double? = nil, errorsInARow: Int = 0) {
        self.peakEquity = peakEquity
        self.errorsInARow = errorsInARow
    }

    /// Takes one finished (non-dry) iteration into account.
    ///
    /// - Parameters:
    ///   - equity: the account's equity after it (read only when the drawdown trigger is on).
    ///   - firstError: the iteration's first error message (nil when it had none).
    /// - Returns: the halt reason when a trigger fires (drawdown first), else nil.
    public mutating func observe(equity: Double?, firstError: String?, triggers: HaltTriggers) -> String? {
        var reason: String?
        if let error = firstError {
            errorsInARow = errorsInARow == .max ? .max : errorsInARow + 1
            if let limit = triggers.errorIterations, errorsInARow >= limit {
                let quoted =
                    error.count > Self.maximumQuotedError ? String(error.prefix(Self.maximumQuotedError)) + "…" : error
                reason =
                    "\(errorsInARow) iteration\(errorsInARow == 1 ? "" : "s") in a row with errors (last: \(quoted))"
            }
        } else {
            errorsInARow = 0
        }
        if let percent = triggers.drawdownPercent, let equity, equity.isFinite {
            let peak = max(peakEquity ?? equity, equity)
            peakEquity = peak
            let drawdown = peak > 0 ? (peak - equity) / peak * 100 : 0
            if drawdown >= percent {
                reason =
                    "drawdown \(Format.fixed(drawdown))% below peak \(Format.fixed(peak)) (equity \(Format.fixed(equity)), limit \(Format.fixed(percent))%)"
            }
        }
        return reason
    }

    /// Starts over from `equity` (an operator resumed trading: the loss so far is accepted).
    public mutating func rebaseline(equity: Double?) {
        errorsInARow = 0
        if peakEquity != nil || equity != nil { peakEquity = equity.flatMap { $0.isFinite ? $0 : nil } }
    }
}
