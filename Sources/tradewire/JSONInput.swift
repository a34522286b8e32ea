import ArgumentParser
import Foundation
import TradewireJSON

/// JSON given on the command line: text, `-` for stdin, or absent.
enum JSONInput {
    /// Parses command-line JSON text; a parse error is a usage error.
    static func parse(_ text: String, what: String) throws(ValidationError) -> JSONValue {
        do {
            return try JSONParser.parse(text)
        } catch {
            throw ValidationError("\(what) is not valid JSON: \(error)")
        }
    }

    /// Resolves an argument that may be `-` (read stdin) or absent (`nil`).
    /// Bad JSON on stdin prints the parse error and exits 2.
    static func resolve(_ argument: String?, what: String) throws -> JSONValue? {
        guard let argument else { return nil }
        guard argument == "-" else { return try parse(argument, what: what) }
        let data = FileHandle.standardInput.readDataToEndOfFile()
        do {
            return try JSONParser.parse(Array(data))
        } catch {
            Console.err("tradewire: \(what) on stdin is not valid JSON: \(error)")
            throw ExitStatus.usage.exitCode
        }
    }

    /// `KEY=VALUE`; the value is a JSON number or boolean when it parses as one, else a string.
    static func metadataEntry(_ text: String) throws(ValidationError) -> (String, JSONValue) {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw ValidationError("--meta expects KEY=VALUE, got '\(text)'.")
        }
        let key = String(text[..<equals])
        let raw = String(text[text.index(after: equals)...])
        switch try? JSONParser.parse(raw) {
        case .some(.number(let n)): return (key, .number(n))
        case .some(.bool(let b)): return (key, .bool(b))
        default: return (key, .string(raw))
        }
    }
}

/// Event type names and subscription patterns (PROTOCOL §3).
enum EventNames {
    private static func allowed(_ c: Character, wildcards: Bool) -> Bool {
        if c.isASCII && (c.isLetter || c.isNumber) { return true }
        if "_.:-".contains(c) { return true }
        return wildcards && (c == "*" || c == "?")
    }

    static func validate(_ name: String, pattern: Bool) throws(ValidationError) {
        let what = pattern ? "pattern" : "event type"
        guard (1...128).contains(name.count) else {
            throw ValidationError("\(what) '\(name)' must be 1-128 characters.")
        }
        guard name.allSatisfy({ allowed($0, wildcards: pattern) }) else {
            let chars = pattern ? "A-Z a-z 0-9 _ . : - * ?" : "A-Z a-z 0-9 _ . : -"
            throw ValidationError("\(what) '\(name)' may only use \(chars).")
        }
    }

    /// A consumer name (PROTOCOL §11): 1-64 characters of the event-type alphabet.
    static func validateConsumer(_ name: String) throws(ValidationError) {
        guard (1...64).contains(name.count), name.allSatisfy({ allowed($0, wildcards: false) }) else {
            throw ValidationError("consumer name '\(name)' must be 1-64 characters of A-Z a-z 0-9 _ . : -.")
        }
    }
}
