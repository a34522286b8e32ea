/// A JSON number kept as its exact text.
///
/// The text is always valid JSON number syntax. Integer and floating-point views are
/// computed on demand; a number too large for `Int` still round-trips exactly.
public struct JSONNumber: Sendable, Hashable, CustomStringConvertible {
    /// The number's JSON text, e.g. `42`, `-0.5`, `1e400`.
    public let text: String

    /// Wraps text that the parser has already validated as JSON number syntax.
    init(validatedText: String) { self.text = validatedText }

    public init(_ value: Int) { self.text = String(value) }
    public init(_ value: Int64) { self.text = String(value) }

    /// Fails for NaN and infinities, which JSON cannot express.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        if value == value.rounded(.towardZero), abs(value) < 1e15 {
            // Integral doubles print without a fraction ("100" not "100.0"), as other JSON writers do.
            self.text = String(Int64(value))
        } else {
            self.text = String(value)
        }
    }

    /// The integer value when the text is an integer literal that fits in `Int`,
    /// or a float literal with an exact integral value that fits (`2.0`, `1e3`).
    public var int: Int? {
        if let i = Int(text) { return i }
        guard let d = Double(text), d.isFinite, d == d.rounded(.towardZero),
            d >= -9.223_372_036_854_775_808e18, d < 9.223_372_036_854_775_808e18
        else { return nil }
        return Int(d)
    }

    /// The value as a finite `Double` (nil when it overflows to infinity).
    public var double: Double? {
        guard let d = Double(text), d.isFinite else { return nil }
        return d
    }

    /// True when the text has no fraction or exponent.
    public var isIntegerLiteral: Bool {
        !text.utf8.contains { $0 == UInt8(ascii: ".") || $0 | 0x20 == UInt8(ascii: "e") }
    }

    public var description: String { text }
}
