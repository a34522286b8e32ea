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

@Suite struct DecimalDigitsTests {
    @Test func writesWhatStringWould() {
        var values = [0, 1, 9, 10, 99, 100, -1, -9, -10, 1_000_000, Int.max, Int.min, Int.min + 1, Int.max - 1]
        var state: UInt64 = 42  // a fixed xorshift: the same values every run
        for _ in 0..<5000 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            values.append(Int(truncatingIfNeeded: state) >> Int(state % 64))
        }
        for value in values {
            let text = DecimalDigits.withText(of: value) { String(decoding: $0, as: UTF8.self) }
            #expect(text == String(value))
            var writer = JSONWriter()
            writer.write(value)
            #expect(writer.bytes == Array(String(value).utf8))
        }
    }
}

/// SplitMix64: seeded, so a test's random inputs are the same every run.
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct RFC3339Tests {
    @Test func formatsWithMicroseconds() {
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000000Z")
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: 1_709_210_096.5)) == "2024-02-29T12:34:56.500000Z")
        #expect(RFC3339.string(from: Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000000Z")
    }

    @Test func inlineTextIsTheQuotedString() {
        var random = SplitMix64(seed: 20_261_202)  // the same dates every run
        func next() -> UInt64 { random.next() }
        var dates = [0, 1_709_210_096.5, -1, 1_709_210_096.999_999_6, 253_402_300_799.999_999].map {
            Date(timeIntervalSince1970: $0)
        }
        for _ in 0..<2000 {
            dates.append(Date(timeIntervalSince1970: -4e9 + Double(next() % 44_000_000_000_000_000) / 1e6))
        }
        for date in dates {
            let text = RFC3339Text(date)
            #expect(text.bytes == Array("\"\(RFC3339.string(from: date))\"".utf8), "\(date.timeIntervalSince1970)")
            #expect(text.bytes.count == RFC3339Text.count)
            #expect(text == RFC3339Text(date))
            var writer = JSONWriter()
            writer.beginArray()
            writer.writeRaw(text)
            writer.writeRaw(text)
            writer.endArray()
            #expect(writer.bytes == Array("[\(text),\(text)]".utf8))
        }
        // Rounded as the journal stores it: .9999996 s is the next second.
        #expect(
            RFC3339Text(Date(timeIntervalSince1970: 1_709_210_096.999_999_6)).description
                == "\"2024-02-29T12:34:57.000000Z\"")
        #expect(RFC3339Text(Date(timeIntervalSince1970: 0)) != RFC3339Text(Date(timeIntervalSince1970: 0.000_001)))
    }

    @Test func theSecondCacheWritesWhatAFullFormatWould() {
        var cache = RFC3339SecondCache()
        // Within one second only the fraction changes; the next second, and one before, are written anew.
        #expect(cache.text(seconds: 1_709_210_096, micros: 1).description == "\"2024-02-29T12:34:56.000001Z\"")
        #expect(cache.text(seconds: 1_709_210_096, micros: 999_999).description == "\"2024-02-29T12:34:56.999999Z\"")
        #expect(cache.text(seconds: 1_709_210_097, micros: 0).description == "\"2024-02-29T12:34:57.000000Z\"")
        #expect(cache.text(seconds: 1_709_210_096, micros: 500_000).description == "\"2024-02-29T12:34:56.500000Z\"")
        #expect(cache.text(seconds: -1, micros: 250).description == "\"1969-12-31T23:59:59.000250Z\"")
        #expect(cache.text(seconds: 0, micros: 0).description == "\"1970-01-01T00:00:00.000000Z\"")
        // Micros beyond a second carry over, either way; absurd values do not trap (the text of
        // a year beyond 9999 or before 0 names nothing).
        #expect(cache.text(seconds: 0, micros: 1_500_000).description == "\"1970-01-01T00:00:01.500000Z\"")
        #expect(cache.text(seconds: 0, micros: -1).description == "\"1969-12-31T23:59:59.999999Z\"")
        #expect(RFC3339Text(seconds: 1, micros: -2_000_001).description == "\"1969-12-31T23:59:58.999999Z\"")
        for (seconds, micros) in [(Int64.max, Int64.max), (Int64.min, Int64.min), (0, Int64.min), (Int64.max, 0)] {
            let text = cache.text(seconds: seconds, micros: micros)
            #expect(text == RFC3339Text(seconds: seconds, micros: micros))
            #expect(text.bytes.count == RFC3339Text.count)
        }
        var random = SplitMix64(seed: 20_261_203)  // the same stamps every run
        func next() -> UInt64 { random.next() }
        var seconds: Int64 = 1_764_000_000
        for _ in 0..<5000 {
            // Mostly the same second, sometimes the next, now and then a jump either way.
            switch next() % 10 {
            case 0: seconds += 1
            case 1: seconds = Int64(next() % 8_000_000_000) - 4_000_000_000  // 1843 to 2096
            default: break
            }
            let micros = Int64(next() % 1_000_000)
            let text = cache.text(seconds: seconds, micros: micros)
            #expect(text == RFC3339Text(seconds: seconds, micros: micros), "\(seconds).\(micros)")
            // The date the bus stamps beside the text names the same microsecond (from 1970 to
            // 2096: a Date's double, counted from 2001, holds it within half a microsecond).
            if (0..<4_000_000_000).contains(seconds) {
                let date = RFC3339.date(seconds: seconds, micros: micros)
                #expect(text == RFC3339Text(date), "\(seconds).\(micros)")
            }
        }
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
