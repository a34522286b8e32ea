import Foundation
import TradewireJSON

/// A trade idea for one symbol, enriched as it moves through the pipeline
/// (strategy → quant → risk).
///
/// JSON: `{"id", "symbol", "action", "strategy_name", "confidence", "timestamp", "price",
/// "stop_loss", "take_profit", "reasoning", "qty", "risk_amount", "approved",
/// "rejection_reason"}` — every key always written, absent values as `null`.
///
/// Decoding requires `symbol`, `action` (`BUY`/`SELL`/`HOLD`), `strategy_name` and
/// `confidence` (in [0, 1]); `id` defaults to a fresh UUID string, `timestamp` to now,
/// `approved` to false, the rest to null (null means absent). Absurd values are refused with
/// the member's path: `price`, `stop_loss` and `take_profit` must be positive finite numbers
/// at most ``maxPrice``; `qty` an integer from 0 to ``maxQuantity``; `risk_amount` a
/// non-negative finite number; and `qty × price` must fit in ``Money``.
public struct TradingSignal: Sendable, JSONModel {
    /// The largest `qty` a decoded signal may carry: one billion shares.
    public static let maxQuantity = 1_000_000_000
    /// The largest price (`price`, `stop_loss`, `take_profit`, bar prices, `fill_price`) a
    /// decoded model may carry: one billion dollars per share.
    public static let maxPrice = 1_000_000_000.0

    public var id: String
    public var symbol: String
    public var action: SignalAction
    public var strategyName: String
    /// In [0, 1].
    public var confidence: Double
    public var timestamp: Date
    public var price: Double?
    public var stopLoss: Double?
    public var takeProfit: Double?
    public var reasoning: String?
    public var qty: Int?
    public var riskAmount: Double?
    public var approved: Bool
    public var rejectionReason: String?

    public init(
        id: String = UUID().uuidString,
        symbol: String,
        action: SignalAction,
        strategyName: String,
        confidence: Double,
        timestamp: Date = Date(),
        price: Double? = nil,
        stopLoss: Double? = nil,
        takeProfit: Double? = nil,
        reasoning: String? = nil,
        qty: Int? = nil,
        riskAmount: Double? = nil,
        approved: Bool = false,
        rejectionReason: String? = nil
    ) {
        self.id = id
        self.symbol = symbol
        self.action = action
        self.strategyName = strategyName
        self.confidence = confidence
        self.timestamp = timestamp
        self.price = price
        self.stopLoss = stopLoss
        self.takeProfit = takeProfit
        self.reasoning = reasoning
        self.qty = qty
        self.riskAmount = riskAmount
        self.approved = approved
        self.rejectionReason = rejectionReason
    }

    /// Convenience: the strategy name parsed (nil for a name that is not one of the ten
    /// nor a legacy alias).
    public var strategy: StrategyName? { StrategyName(lenient: strategyName) }

    public func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("id", id)
        writer.field("symbol", symbol)
        writer.field("action", action.rawValue)
        writer.field("strategy_name", strategyName)
        writer.field("confidence", confidence)
        writer.field("timestamp", timestamp)
        writer.field("price", price)
        writer.field("stop_loss", stopLoss)
        writer.field("take_profit", takeProfit)
        writer.field("reasoning", reasoning)
        writer.field("qty", qty)
        writer.field("risk_amount", riskAmount)
        writer.field("approved", approved)
        writer.field("rejection_reason", rejectionReason)
        writer.endObject()
    }

    public init(json: JSONValue, path: String) throws(JSONDecodingError) {
        let r = try JSONObjectReader(json, path: path)
        id = try r.optionalString("id") ?? UUID().uuidString
        symbol = try r.string("symbol")
        let actionText = try r.string("action")
        guard let action = SignalAction(rawValue: actionText) else {
            throw JSONDecodingError(path: r.pointer("action"), message: "expected one of BUY, SELL, HOLD")
        }
        self.action = action
        strategyName = try r.string("strategy_name")
        confidence = try r.double("confidence")
        guard confidence >= 0, confidence <= 1 else {
            throw JSONDecodingError(path: r.pointer("confidence"), message: "must be between 0 and 1")
        }
        timestamp = try r.optionalDate("timestamp") ?? Date()
        price = try r.optionalPrice("price")
        stopLoss = try r.optionalPrice("stop_loss")
        takeProfit = try r.optionalPrice("take_profit")
        reasoning = try r.optionalString("reasoning")
        qty = try r.optionalQuantity("qty")
        try r.checkNotional(quantity: qty, price: price, quantityKey: "qty")
        riskAmount = try r.optionalNonNegative("risk_amount")
        approved = try r.optionalBool("approved") ?? false
        rejectionReason = try r.optionalString("rejection_reason")
    }
}
