extension RiskAgent {
    /// The shares an order may trade while reducing: the size of the position it reduces (a
    /// SELL against a long, a BUY against a short), or nil when it would not reduce one.
    static func reducibleSize(_ action: SignalAction, held: Int) -> Int? {
        switch action {
        case .sell where held > 0: held
        case .buy where held < 0: held == .min ? .max : -held
        default: nil
        }
    }

    /// The risk stage's decision held to the trading state once more, after remote risk
    /// groups (whose deadline may let the state change meanwhile): halted rejects every
    /// approved non-HOLD signal; reducing keeps an approval only when it reduces a position
    /// of `positions` (plus this list's earlier approvals), with `qty` capped at that
    /// position and `risk_amount` lowered in proportion. Active changes nothing.
    ///
    /// - Returns: the signals, in order, and the risk the revoked or lowered approvals free
    ///   (to give back to the budget).
    public static func enforce(
        _ tradingState: TradingStateSnapshot, on signals: [TradingSignal], positions: [String: Int]
    ) -> (signals: [TradingSignal], released: Double) {
        guard let reason = tradingState.rejectionReason else { return (signals, 0) }
        var pending: [String: Int] = [:]
        var released = 0.0
        let enforced = signals.map { original -> TradingSignal in
            guard original.approved, original.action != .hold else { return original }
            var signal = original
            let held = (positions[signal.symbol] ?? 0).addingReportingOverflow(pending[signal.symbol] ?? 0)
            let qty = signal.qty ?? 0
            guard tradingState.state == .reducing, !held.overflow,
                let size = reducibleSize(signal.action, held: held.partialValue), qty > 0
            else {
                signal.approved = false
                signal.rejectionReason = reason
                released += max(signal.riskAmount ?? 0, 0)
                return signal
            }
            if qty > size {
                signal.qty = size
                if let risk = signal.riskAmount, risk.isFinite {
                    let lowered = risk * Double(size) / Double(qty)
                    released += max(risk - lowered, 0)
                    signal.riskAmount = lowered
                }
            }
            let traded = signal.qty ?? 0
            pending[signal.symbol, default: 0] += signal.action == .buy ? traded : -traded
            return signal
        }
        return (enforced, released)
    }
}
