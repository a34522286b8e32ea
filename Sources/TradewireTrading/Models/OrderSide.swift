import TradewireJSON

/// An order's side; raw values are the wire strings `buy` / `sell`.
public enum OrderSide: String, Sendable, Hashable, CaseIterable, JSONEncodable {
    case buy
    case sell

    /// Case-insensitive parse (`"BUY"`, `"Sell"`…), as the original's `OrderSide.from_string`.
    public init?(lenient text: String) {
        self.init(rawValue: text.lowercased())
    }

    public func encodeJSON(to writer: inout JSONWriter) { writer.write(rawValue) }
}
