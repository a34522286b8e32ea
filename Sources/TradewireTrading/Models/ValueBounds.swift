import TradewireJSON

/// Range checks for client-supplied numbers, shared by the model decoders. Each failure is a
/// ``JSONDecodingError`` at the member's JSON Pointer (the reader's path + the key).
extension JSONObjectReader {
    /// A price: a positive finite number of dollars, at most ``TradingSignal/maxPrice``.
    func price(_ key: String) throws(JSONDecodingError) -> Double {
        try checkedPrice(key, try double(key))
    }

    /// An optional price (absent or null → nil); see ``price(_:)``.
    func optionalPrice(_ key: String) throws(JSONDecodingError) -> Double? {
        guard let value = try optionalDouble(key) else { return nil }
        return try checkedPrice(key, value)
    }

    /// An optional share count in `0...TradingSignal.maxQuantity` (absent or null → nil).
    func optionalQuantity(_ key: String) throws(JSONDecodingError) -> Int? {
        guard let value = try optionalInt(key) else { return nil }
        guard value >= 0, value <= TradingSignal.maxQuantity else {
            throw JSONDecodingError(
                path: pointer(key), message: "must be between 0 and \(TradingSignal.maxQuantity), got \(value)")
        }
        return value
    }

    /// A finite number ≥ 0.
    func nonNegative(_ key: String) throws(JSONDecodingError) -> Double {
        try checkedNonNegative(key, try double(key))
    }

    /// An optional finite number ≥ 0 (absent or null → nil).
    func optionalNonNegative(_ key: String) throws(JSONDecodingError) -> Double? {
        guard let value = try optionalDouble(key) else { return nil }
        return try checkedNonNegative(key, value)
    }

    /// Fails at `quantityKey` when `quantity × price` dollars would not fit in ``Money``.
    func checkNotional(quantity: Int?, price: Double?, quantityKey: String) throws(JSONDecodingError) {
        guard let quantity, let price else { return }
        guard Double(quantity) * price <= Money.maxDollars else {
            throw JSONDecodingError(
                path: pointer(quantityKey),
                message: "quantity × price must not exceed \(Int64(Money.maxDollars)) dollars (the ledger's limit)")
        }
    }

    private func checkedPrice(_ key: String, _ value: Double) throws(JSONDecodingError) -> Double {
        guard value.isFinite, value > 0 else {
            throw JSONDecodingError(path: pointer(key), message: "must be a positive finite number")
        }
        guard value <= TradingSignal.maxPrice else {
            throw JSONDecodingError(path: pointer(key), message: "must not exceed \(Int(TradingSignal.maxPrice))")
        }
        return value
    }

    private func checkedNonNegative(_ key: String, _ value: Double) throws(JSONDecodingError) -> Double {
        guard value.isFinite, value >= 0 else {
            throw JSONDecodingError(path: pointer(key), message: "must be a non-negative finite number")
        }
        return value
    }
}
