import Foundation
import Logging

/// The risk stage's decision on a list of signals.
public struct RiskDecision: Sendable {
    /// Approved signals (`approved = true`), HOLD included, in input order.
    public var approved: [TradingSignal]
    /// Rejected signals (`approved = false`, `rejectionReason` set), in input order.
    public var rejected: [TradingSignal]

    public init(approved: [TradingSignal] = [], rejected: [TradingSignal] = []) {
        self.approved = approved
        self.rejected = rejected
    }
}

/// Hard-coded risk rules and ATR position sizing (original §7.4, with the port's fixes: the
/// budget resets each UTC day, sizing reads the broker's current account, and a BUY is sized
/// against buying power).
///
/// For each non-HOLD signal, in order (`balance` = the account's equity, or
/// ``TradingConfig/riskDefaultAccountBalance`` when that is not a positive number; `price` =
/// the symbol's last close in the market data — never the signal's own `price`):
/// 0. The trading state (PROTOCOL §12): halted rejects it with "trading halted: REASON";
///    reducing lets through only a SELL against a long position or a BUY against a short one
///    (held plus this call's earlier approvals), capped at that position's size, and rejects
///    anything else with "trading reducing: REASON" (without an account, everything).
/// 1. `confidence ≥ riskMinConfidence`, else "Confidence 0.20 below minimum 0.30".
/// 2. Bars for the symbol, else "No historical data for position sizing", and a positive
///    finite last close, else "No valid price for position sizing".
/// 3. `ATR` = ATR(14) (simple mean of true range) with ≥ 14 bars, else mean(high − low);
///    `stop = 1.5 × ATR`, which must be > 0.
/// 4. `risk = min(maxPerTrade·balance·confidence, maxPerTrade·balance)`;
///    `qty = clamp(Int(risk / stop), 1, riskMaxQty)`; `actual = qty × stop`.
/// 5. `actual > maxPerTrade·balance` → "exceeds max risk" (only when the floor of 1 share
///    bumps the size up).
/// 6. With an account: a SELL with shorting disabled needs shares (held plus this call's
///    earlier approvals), else "No position to sell (shorting disabled)", and is capped at
///    them. A BUY is reduced until its cost (``OrderPricing``: qty × price × (1 + slippage),
///    plus commission) fits the cash not yet spent by this call's earlier BUYs, and the
///    position `(held + qty) × price` stays within `riskMaxPositionPct × balance`; when not
///    even one share fits → ``insufficientBuyingPower``. SELLs are not limited by cash.
///    `actual` is recomputed for the reduced quantity.
/// 7. The day's committed risk + `actual > maxDailyLoss·balance` → "Would exceed daily loss
///    limit …".
/// 8. Approve: `qty`, `risk_amount = actual`, `price` = the sizing price, and
///    `stop_loss = price ∓ stop` when unset.
///
/// HOLD is approved as is, without sizing.
public struct RiskAgent: Sendable {
    /// The rejection reason of a BUY that cannot afford one share, or whose position is
    /// already at ``TradingConfig/riskMaxPositionPct`` of equity.
    public static let insufficientBuyingPower = "insufficient buying power"

    public let config: TradingConfig
    public let budget: RiskBudget
    let logger: Logger

    public init(config: TradingConfig, budget: RiskBudget, logger: Logger) {
        self.config = config
        self.budget = budget
        self.logger = logger
    }

    /// Approves or rejects each signal against the broker's account (see the type's
    /// documentation): equity sets the balance, cash and positions the buying power.
    ///
    /// With `commit` false (a dry run) the shared budget is left untouched, but signals are
    /// still checked as if the earlier approvals of this call had been committed (budget,
    /// cash and shares alike).
    ///
    /// `committedBefore` (dry runs only) replaces the budget's total for the day: a replay
    /// checks against the budget as it was then.
    ///
    /// `tradingState` is the kill switch's state (nil: active).
    public func evaluate(
        _ signals: [TradingSignal], marketData: [String: MarketData], account: AccountSnapshot, on date: Date,
        commit: Bool, committedBefore: Double? = nil, tradingState: TradingStateSnapshot? = nil
    ) -> RiskDecision {
        evaluate(
            signals, marketData: marketData, equity: account.equity.dollars, account: account, on: date, commit: commit,
            committedBefore: committedBefore, tradingState: tradingState)
    }

    /// Approves or rejects each signal without a broker account: the original's rules only
    /// (steps 0–5, 7 and 8 of the type's documentation) — no buying-power or position checks,
    /// so a reducing state rejects every non-HOLD signal (no position is known to reduce).
    public func evaluate(
        _ signals: [TradingSignal], marketData: [String: MarketData], equity: Double, on date: Date, commit: Bool,
        tradingState: TradingStateSnapshot? = nil
    ) -> RiskDecision {
        evaluate(
            signals, marketData: marketData, equity: equity, account: nil, on: date, commit: commit,
            committedBefore: nil, tradingState: tradingState)
    }

    private func evaluate(
        _ signals: [TradingSignal], marketData: [String: MarketData], equity: Double, account: AccountSnapshot?,
        on date: Date, commit: Bool, committedBefore: Double?, tradingState: TradingStateSnapshot?
    ) -> RiskDecision {
        let balance = equity.isFinite && equity > 0 ? equity : config.riskDefaultAccountBalance
        let dailyLimit = config.riskMaxDailyLoss * balance
        var dryCommitted = commit ? 0 : committedBefore ?? budget.committed(on: date)
        var power = account.map { BuyingPower(account: $0, pricing: OrderPricing(config: config)) }
        var decision = RiskDecision()
        decision.approved.reserveCapacity(signals.count)

        for var signal in signals {
            if signal.action == .hold {
                signal.approved = true
                signal.rejectionReason = nil
                decision.approved.append(signal)
                continue
            }
            // The most shares this signal may trade: what a SELL may sell without shorting, or
            // the size of the position a reducing state lets it reduce.
            var held: Int?
            if let tradingState, let reason = tradingState.rejectionReason {
                let shares = power?.shares(of: signal.symbol) ?? 0
                guard tradingState.state == .reducing, let size = Self.reducibleSize(signal.action, held: shares) else {
                    reject(&signal, reason, into: &decision)
                    continue
                }
                held = size
            } else if signal.action == .sell, !config.allowShorting, let power {
                let shares = power.shares(of: signal.symbol)
                guard shares > 0 else {
                    reject(&signal, "No position to sell (shorting disabled)", into: &decision)
                    continue
                }
                held = shares
            }
            let sizing = size(signal, bars: marketData[signal.symbol]?.bars ?? [], balance: balance)
            switch sizing {
            case .rejected(let reason):
                reject(&signal, reason, into: &decision)
            case .sized(var qty, var actual, let stop, let price):
                if let held, qty > held {
                    qty = held
                    actual = Double(qty) * stop
                }
                if signal.action == .buy, let power {
                    let limit = config.riskMaxPositionPct * balance
                    let affordable = power.affordableShares(
                        of: signal.symbol, at: price, upTo: qty, positionLimit: limit)
                    guard affordable >= 1 else {
                        reject(&signal, Self.insufficientBuyingPower, into: &decision)
                        continue
                    }
                    if affordable < qty {
                        qty = affordable
                        actual = Double(qty) * stop
                    }
                }
                if commit {
                    let reservation = budget.reserve(actual, limit: dailyLimit, on: date)
                    guard reservation.accepted else {
                        reject(
                            &signal, dailyLimitMessage(reservation.committedBefore, actual, dailyLimit), into: &decision
                        )
                        continue
                    }
                } else {
                    guard dryCommitted + actual <= dailyLimit else {
                        reject(&signal, dailyLimitMessage(dryCommitted, actual, dailyLimit), into: &decision)
                        continue
                    }
                    dryCommitted += actual
                }
                power?.record(signal.action, symbol: signal.symbol, quantity: qty, at: price)
                signal.qty = qty
                signal.riskAmount = actual
                if signal.stopLoss == nil {
                    signal.stopLoss = signal.action == .buy ? price - stop : price + stop
                }
                signal.price = price
                signal.approved = true
                signal.rejectionReason = nil
                logger.debug(
                    "risk.approved",
                    metadata: [
                        "symbol": "\(signal.symbol)", "qty": "\(qty)", "risk_amount": "\(actual)", "price": "\(price)",
                    ])
                decision.approved.append(signal)
            }
        }
        return decision
    }

    private enum Sizing {
        case sized(qty: Int, actual: Double, stop: Double, price: Double)
        case rejected(String)
    }

    private func size(_ signal: TradingSignal, bars: [Bar], balance: Double) -> Sizing {
        let minimum = config.riskMinConfidence
        guard signal.confidence >= minimum else {
            // Two decimals as the original; more when rounding would make them look equal (0.2996 vs 0.30).
            var digits = 2
            while digits < 6, Format.fixed(signal.confidence, digits) == Format.fixed(minimum, digits) { digits += 1 }
            return .rejected(
                "Confidence \(Format.fixed(signal.confidence, digits)) below minimum \(Format.fixed(minimum, digits))")
        }
        guard let last = bars.last else { return .rejected("No historical data for position sizing") }
        let price = last.close
        guard price.isFinite, price > 0 else { return .rejected("No valid price for position sizing") }
        let atr = Self.averageTrueRange(bars)
        let stop = 1.5 * atr
        guard stop.isFinite, stop > 0 else {
            return .rejected("Invalid stop distance \(Format.fixed(stop, 4)) (ATR \(Format.fixed(atr, 4)))")
        }
        let maxRisk = config.riskMaxPerTrade * balance
        let risk = min(maxRisk * signal.confidence, maxRisk)
        let raw = risk / stop
        let qty = raw >= Double(config.riskMaxQty) ? config.riskMaxQty : max(1, Int(raw))
        let clamped = min(max(qty, 1), max(config.riskMaxQty, 1))
        let actual = Double(clamped) * stop
        guard actual <= maxRisk else {
            return .rejected(
                "Position risk \(Format.fixed(actual)) exceeds max risk \(Format.fixed(maxRisk)) per trade (\(Format.fixed(config.riskMaxPerTrade * 100))% of \(Format.fixed(balance)))"
            )
        }
        return .sized(qty: clamped, actual: actual, stop: stop, price: price)
    }

    /// ATR(14) (simple mean of true range) with at least 14 bars and a finite value,
    /// else the mean of `high − low` over all bars.
    static func averageTrueRange(_ bars: [Bar]) -> Double {
        let period = 14
        let n = bars.count
        if n >= period {
            var sum = 0.0
            for i in (n - period)..<n {
                let range = bars[i].high - bars[i].low
                if i == 0 {
                    sum += range
                } else {
                    let pc = bars[i - 1].close
                    sum += max(range, abs(bars[i].high - pc), abs(bars[i].low - pc))
                }
            }
            let atr = sum / Double(period)
            if atr.isFinite { return atr }
        }
        guard n > 0 else { return .nan }
        var sum = 0.0
        for bar in bars { sum += bar.high - bar.low }
        return sum / Double(n)
    }

    private func dailyLimitMessage(_ committed: Double, _ amount: Double, _ limit: Double) -> String {
        "Would exceed daily loss limit: committed \(Format.fixed(committed)) + \(Format.fixed(amount)) > \(Format.fixed(limit)) (\(Format.fixed(config.riskMaxDailyLoss * 100))% of equity)"
    }

    private func reject(_ signal: inout TradingSignal, _ reason: String, into decision: inout RiskDecision) {
        signal.approved = false
        signal.rejectionReason = reason
        logger.debug("risk.rejected", metadata: ["symbol": "\(signal.symbol)", "reason": "\(reason)"])
        decision.rejected.append(signal)
    }
}
