import Foundation
import Testing

@testable import TradewireJSON

@Suite struct JSONParserTests {
    @Test func parsesEveryKind() throws {
        let value = try JSONParser.parse(#" {"a": [1, -2.5e3, true, false, null, "x\"y\u00e9\ud83d\ude00"], "b": {}} "#)
        #expect(value["a"]?.arrayValue?.count == 6)
        #expect(value["a"]?.arrayValue?[0].intValue == 1)
        #expect(value["a"]?.arrayValue?[1].doubleValue == -2500)
        #expect(value["a"]?.arrayValue?[5].stringValue == "x\"yé😀")
        #expect(value["b"]?.objectValue?.isEmpty == true)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "tru", "\"abc", "{\"a\" 1}", "[1] x", "\"\u{01}\"", "\"\\x\"",
        "\"\\ud800\"", "{a:1}", "NaN", "1e", "[", "nul",
    ])
    func rejectsInvalidJSON(text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
    }

    @Test func boundsNesting() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let ok = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect((try? JSONParser.parse(ok)) != nil)
    }

    @Test func hugeNumbersRoundTripExactly() throws {
        let text = #"[123456789012345678901234567890,1e400,-0.000000000000000000001]"#
        let value = try JSONParser.parse(text)
        #expect(value.description == text)
        #expect(value.arrayValue?[0].intValue == nil)
        #expect(value.arrayValue?[1].doubleValue == nil)
    }

    @Test func writerEscapesAndStaysOnOneLine() throws {
        let value: JSONValue = ["s": "line1\nline2\t\"q\" \\ \u{07}", "n": nil, "d": 0.1, "i": 100.0]
        let text = value.description
        #expect(!text.contains("\n"))
        #expect(text == #"{"s":"line1\nline2\t\"q\" \\ \u0007","n":null,"d":0.1,"i":100}"#)
        #expect(try JSONParser.parse(text) == value)
    }

    @Test func objectsCompareIgnoringOrder() throws {
        #expect(try JSONParser.parse(#"{"a":1,"b":2}"#) == JSONParser.parse(#"{"b":2,"a":1}"#))
        #expect(try JSONParser.parse(#"{"a":1,"a":2}"#)["a"] == 2)
    }
}

@Suite struct RFC3339Tests {
    @Test func formatsWithMicroseconds() {
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 1_709_210_096.5)) == "2024-02-29T12:34:56.500000Z")
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000000Z")
    }

    @Test func parsesCommonForms() {
        #expect(RFC3339.date(from: "2024-02-29")?.timeIntervalSince1970 == 1_709_164_800)
        #expect(RFC3339.date(from: "2024-02-29T12:34:56Z")?.timeIntervalSince1970 == 1_709_210_096)
        #expect(RFC3339.date(from: "2024-02-29T12:34:56.5+01:00")?.timeIntervalSince1970 == 1_709_206_496.5)
        #expect(RFC3339.date(from: "2024-02-29 12:34:56")?.timeIntervalSince1970 == 1_709_210_096)
        #expect(RFC3339.date(from: "2024-13-01") == nil)
        #expect(RFC3339.date(from: "yesterday") == nil)
    }

    @Test func roundTrips() {
        let date = Date(timeIntervalSince1970: 1_764_000_000.123456)
        let parsed = RFC3339.date(from: RFC3339.string(from: date))!
        #expect(abs(parsed.timeIntervalSince1970 - date.timeIntervalSince1970) < 1e-6)
    }
}

@Suite struct JSONDecodingTests {
    @Test func readerReportsPointers() throws {
        let value = try JSONParser.parse(#"{"a":{"b/c":[1,"x"]},"n":null}"#)
        let reader = try JSONObjectReader(value, path: "")
        #expect(try reader.optionalString("n") == nil)
        let inner = try #require(try reader.optionalObject("a"))
        #expect(inner.pointer("b/c") == "/a/b~1c")
        #expect(throws: JSONDecodingError(path: "/a", message: "expected a string, got object")) {
            try reader.string("a")
        }
        #expect(throws: JSONDecodingError(path: "/missing", message: "required")) { try reader.int("missing") }
        #expect(throws: JSONDecodingError(path: "/z", message: "unknown parameter")) {
            try JSONObjectReader(["z": 1], path: "").rejectUnknownKeys(["a"])
        }
    }
}
