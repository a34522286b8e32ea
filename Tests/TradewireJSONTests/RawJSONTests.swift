import Testing

@testable import TradewireJSON

/// `params.data` kept as bytes must be exactly what parsing and writing again would give,
/// and anything the fast path declines must behave as the tree parser does.
@Suite struct RawJSONTests {
    /// The request shape the parser's raw path applies to.
    private func request(_ data: String) -> String {
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":\#(data)}}"#
    }

    /// Parses with and without the raw path; both must agree.
    private func both(_ text: String) throws -> (tree: JSONValue, raw: RawJSON?, rawTree: JSONValue) {
        let tree = try JSONParser.parse(Array(text.utf8))
        let (rawTree, raw) = try JSONParser.parse(Array(text.utf8), keepingRaw: ("params", "data"))
        return (tree, raw, rawTree)
    }

    @Test(arguments: [
        #"{"a": 1, "b" : [true, false, null, -1.5e3, "x"], "c": {"d": {}}}"#,
        #"  "plain ascii"  "#, "42", "-0.5E+2", "true", "null", "[]", "{}", #"[1, [2, [3, {"k": "v"}]]]"#,
        #""escapes \" \\ \n \r \t kept""#, #""naïve café 😀 ü""#, #"{"dup": 1, "dup": 2}"#,
        #"{"num": 123456789012345678901234567890}"#,
    ])
    func keptBytesEqualTheTreeWrittenAgain(data: String) throws {
        let (tree, raw, rawTree) = try both(request(data))
        let expected = try #require(tree["params"]?["data"])
        let kept = try #require(raw, "the fast path should keep \(data)")
        #expect(kept.bytes == JSONWriter.encode(expected))
        #expect(kept.value == expected)
        #expect(kept.typeName == expected.typeName)
        #expect(rawTree["params"]?["data"] == .null)
        #expect(rawTree["params"]?["event_type"] == "x")
        #expect(rawTree["method"] == "publish")
    }

    @Test(arguments: [
        #""solidus \/""#, #""\u00e9""#, #""\b\f""#, #"["\ud83d\ude00"]"#,
    ])
    func escapesWrittenDifferentlyGoThroughTheTree(data: String) throws {
        let (tree, raw, rawTree) = try both(request(data))
        #expect(raw == nil)
        #expect(rawTree == tree)
    }

    @Test(arguments: [
        "[1,]", #"{"a":}"#, "01", "1.", "-", "tru", #""abc"#, #"{"a" 1}"#, #""\x""#, #""\ud800""#, "{a:1}", "NaN",
        "[", "nul", "\"\u{01}\"",
    ])
    func invalidDataFailsExactlyAsTheTreeParserDoes(data: String) {
        let text = Array(request(data).utf8)
        var treeError: JSONParseError?
        var rawError: JSONParseError?
        do { _ = try JSONParser.parse(text) } catch { treeError = error }
        do { _ = try JSONParser.parse(text, keepingRaw: ("params", "data")) } catch { rawError = error }
        #expect(treeError != nil)
        #expect(rawError == treeError)
    }

    @Test func invalidUTF8IsRefusedAsByTheTreeParser() {
        for bad: [UInt8] in [
            [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xFF],
        ] {
            let text = Array(request("\"a").utf8) + bad + Array("\"}}".utf8)
            var treeError: JSONParseError?
            var rawError: JSONParseError?
            do { _ = try JSONParser.parse(text) } catch { treeError = error }
            do { _ = try JSONParser.parse(text, keepingRaw: ("params", "data")) } catch { rawError = error }
            #expect(treeError?.reason == .invalidUTF8)
            #expect(rawError == treeError)
        }
    }

    @Test func randomValuesAgreeWithTheTree() throws {
        var generator = SystemRandomNumberGenerator()
        let pieces = [
            "1", "-2.5e-3", "true", "null", #""s""#, #""é""#, #""\n""#, #""\u0041""#, "[]", "{}", #""😀""#, " ",
        ]
        for _ in 0..<2000 {
            let value = randomValue(depth: 0, pieces: pieces, using: &generator)
            let (tree, raw, rawTree) = try both(request(value))
            let expected = try #require(tree["params"]?["data"])
            if let raw {
                #expect(raw.bytes == JSONWriter.encode(expected), "\(value)")
            } else {
                #expect(rawTree == tree, "\(value)")
            }
        }
    }

    private func randomValue(depth: Int, pieces: [String], using generator: inout SystemRandomNumberGenerator)
        -> String
    {
        let pick = Int.random(in: 0..<(depth > 4 ? 1 : 4), using: &generator)
        switch pick {
        case 1:
            let count = Int.random(in: 0..<4, using: &generator)
            let elements = (0..<count).map { _ in randomValue(depth: depth + 1, pieces: pieces, using: &generator) }
            return "[ " + elements.joined(separator: " , ") + "]"
        case 2:
            let count = Int.random(in: 0..<4, using: &generator)
            let members = (0..<count).map { i in
                "\"k\(i % 2)\" :" + randomValue(depth: depth + 1, pieces: pieces, using: &generator)
            }
            return "{" + members.joined(separator: ",") + " }"
        default:
            let piece = pieces.randomElement(using: &generator)!
            return piece == " " ? "0" : piece
        }
    }

    @Test func onlyTheNamedMemberOfTheRootIsKept() throws {
        let text = #"{"params":{"x":{"data":[1, 2]},"data":[3, 4]},"data":[5]}"#
        let (value, raw) = try JSONParser.parse(Array(text.utf8), keepingRaw: ("params", "data"))
        #expect(raw?.bytes == Array("[3,4]".utf8))
        #expect(value["params"]?["x"]?["data"] == [1, 2])
        #expect(value["data"] == [5])
        let batch = "[" + text + "]"
        let (batchValue, batchRaw) = try JSONParser.parse(Array(batch.utf8), keepingRaw: ("params", "data"))
        #expect(batchRaw == nil)
        #expect(batchValue.arrayValue?.first?["params"]?["data"] == [3, 4])
    }

    @Test func aRepeatedMemberKeepsTheLastOccurrence() throws {
        for (text, expected) in [
            (#"{"params":{"data":1},"params":{"x":2}}"#, nil as [UInt8]?),
            (#"{"params":{"data":1},"params":[]}"#, nil),
            (#"{"params":{"data":1},"params":{"data":[3]}}"#, Array("[3]".utf8)),
            (#"{"params":{"data":1,"data":"\u0041"}}"#, nil),
            (#"{"params":{"data":"\u0041","data":2}}"#, Array("2".utf8)),
            (#"{"params":{"data":1,"data":2}}"#, Array("2".utf8)),
        ] {
            let (value, raw) = try JSONParser.parse(Array(text.utf8), keepingRaw: ("params", "data"))
            #expect(raw?.bytes == expected, "\(text)")
            if expected == nil {
                let tree = try JSONParser.parse(text)
                #expect(value["params"]?["data"] == tree["params"]?["data"], "\(text)")
            }
        }
    }
}

@Suite struct RawJSONMemoryTests {
    @Test func keptBytesDoNotHoldTheRestOfTheLine() throws {
        let padding = String(repeating: "x", count: 100_000)
        let text = #"{"params":{"data":[1,2],"metadata":{"pad":"\#(padding)"}}}"#
        let (_, raw) = try JSONParser.parse(Array(text.utf8), keepingRaw: ("params", "data"))
        let kept = try #require(raw)
        #expect(kept.bytes == Array("[1,2]".utf8))
        #expect(kept.bytes.capacity < 1024)
    }
}
