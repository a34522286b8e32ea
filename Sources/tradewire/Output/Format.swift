import Foundation
import TradewireJSON

/// Small formatting helpers for the human output.
enum Format {
    /// Cuts `text` to `width` characters, ending with `…` when cut.
    static func truncate(_ text: String, to width: Int?) -> String {
        guard let width, text.count > width, width > 1 else { return text }
        return String(text.prefix(width - 1)) + "…"
    }

    /// `14:38:21.555` from an RFC 3339 timestamp (the whole text when it is not one).
    static func time(_ timestamp: JSONValue?) -> String {
        guard let text = timestamp?.stringValue else { return "-" }
        guard let t = text.firstIndex(of: "T") else { return text }
        let clock = text[text.index(after: t)...].prefix { $0 != "Z" && $0 != "+" }
        return String(clock.prefix(12))
    }

    /// A scalar for a table cell: strings bare, numbers as written, null as `-`.
    static func cell(_ value: JSONValue?) -> String {
        switch value {
        case .none, .some(.null): "-"
        case .some(.string(let s)): s
        case .some(.bool(let b)): b ? "yes" : "no"
        case .some(let other): JSONWriter.string(other)
        }
    }

    /// A number with `digits` decimals (`-` when absent).
    static func fixed(_ value: JSONValue?, _ digits: Int) -> String {
        guard let d = value?.doubleValue else { return "-" }
        return fixed(d, digits)
    }

    static func fixed(_ d: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", d)
    }

    /// `2.3 ms` below a second, `1.25 s` above.
    static func duration(seconds: Double?) -> String {
        guard let seconds else { return "-" }
        if seconds < 1 { return fixed(seconds * 1000, 1) + " ms" }
        return fixed(seconds, 2) + " s"
    }

    /// A number without trailing zeros, e.g. `0.2`, `60`, `1.5`.
    static func number(_ value: JSONValue?) -> String {
        guard let value else { return "-" }
        if let n = value.numberValue { return n.text }
        return cell(value)
    }
}
