/// Why a symbol was refused.
public struct SymbolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text as given.
    public let symbol: String
    public let message: String

    public init(symbol: String, message: String) {
        self.symbol = symbol
        self.message = message
    }

    public var description: String { message }
}

/// Symbol normalisation shared by every entry point (PROTOCOL §8).
public enum SymbolValidation {
    /// The accepted shape after normalising.
    public static let pattern = "^[A-Z][A-Z0-9.-]{0,9}$"

    /// Trims whitespace, upper-cases, then requires `^[A-Z][A-Z0-9.-]{0,9}$`.
    ///
    /// - Throws: ``SymbolError`` with a message naming the symbol and the rule.
    public static func normalize(_ raw: String) throws(SymbolError) -> String {
        let symbol = raw.trimmingASCIIWhitespace().uppercased()
        guard !symbol.isEmpty else {
            throw SymbolError(symbol: raw, message: "symbol cannot be empty")
        }
        let bytes = symbol.utf8
        var valid = bytes.count <= 10
        if valid {
            for (i, b) in bytes.enumerated() {
                let letter = b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z")
                if i == 0 {
                    if !letter { valid = false; break }
                } else {
                    let digit = b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")
                    if !(letter || digit || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")) { valid = false; break }
                }
            }
        }
        guard valid else {
            throw SymbolError(
                symbol: raw, message: "invalid symbol \"\(raw)\": must match \(pattern) after upper-casing")
        }
        return symbol
    }

    /// True when ``normalize(_:)`` would accept the text.
    public static func isValid(_ raw: String) -> Bool {
        (try? normalize(raw)) != nil
    }
}

extension String {
    /// The string without leading/trailing spaces, tabs, CR and LF.
    func trimmingASCIIWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
