import Testing
import TradewireJSON
import TradewireTesting

@testable import TradewireRPC

/// The publish fast path must read a line exactly as the parser and the method table do, and
/// decline everything else (the table then answers it as before).
@Suite struct PublishEnvelopeTests {
    private func scan(_ text: String, previousType: String? = nil) -> PublishEnvelope? {
        Array(text.utf8).withUnsafeBytes { PublishEnvelope.scan($0, previousType: previousType) }
    }

    /// What the parser makes of the line: id, event_type and data's compact bytes.
    private func parsed(_ text: String) throws -> (id: JSONValue?, type: String?, data: [UInt8], keys: [String]) {
        guard case .single(.request(let request)) = RPCMessageParser.parse(Array(text.utf8)) else {
            throw ScanMismatch(line: text)
        }
        #expect(request.method == "publish")
        let data = request.rawData?.bytes ?? JSONWriter.encode(request.params["data"] ?? .null)
        return (request.id, request.params["event_type"]?.stringValue, data, request.params.members.map(\.key))
    }

    private struct ScanMismatch: Error { let line: String }

    /// Asserts the scan read `text` as the parser does.
    private func expectAgrees(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let envelope = try #require(scan(text), "the fast path should read \(text)", sourceLocation: sourceLocation)
        let reference = try parsed(text)
        #expect(envelope.id == reference.id, sourceLocation: sourceLocation)
        #expect(envelope.eventType == reference.type, sourceLocation: sourceLocation)
        #expect(envelope.data.bytes == reference.data, sourceLocation: sourceLocation)
        #expect(Set(reference.keys) == ["event_type", "data"], sourceLocation: sourceLocation)
    }

    @Test(arguments: [
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"tick","data":{"px":1.5}}}"#,
        #"{"method":"publish","params":{"data":[1,2,{"a":null}],"event_type":"a.b:c-d_e"},"id":"req-7","jsonrpc":"2.0"}"#,
        #" { "jsonrpc" : "2.0" , "id" : -12 , "method" : "publish" , "params" : { "event_type" : "x" , "data" : { "k" : [ true , false ] } } } "#,
        #"{"jsonrpc":"2.0","id":1.5e3,"method":"publish","params":{"event_type":"x","data":"text \" \\ \n kept"}}"#,
        #"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"publish","params":{"event_type":"x","data":null}}"#,
        #"{"jsonrpc":"2.0","id":"","method":"publish","params":{"event_type":"x","data":-0.25E-3}}"#,
        #"{"jsonrpc":"2.0","id":0,"method":"publish","params":{"event_type":"x","data":"naïve 😀"}}"#,
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"publish\",\"params\":{\"event_type\":\"x\",\"data\":{}}}\r",
    ])
    func readsWhatTheParserReads(line: String) throws {
        try expectAgrees(line)
    }

    @Test(arguments: [
        // Not this method, not a request of this shape.
        #"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish2","params":{"event_type":"x","data":1}}"#,
        #"{"jsonrpc":"1.0","id":1,"method":"publish","params":{"event_type":"x","data":1}}"#,
        #"[{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1}}]"#,
        // A notification, a null id, an id of another type.
        #"{"jsonrpc":"2.0","method":"publish","params":{"event_type":"x","data":1}}"#,
        #"{"jsonrpc":"2.0","id":null,"method":"publish","params":{"event_type":"x","data":1}}"#,
        #"{"jsonrpc":"2.0","id":[1],"method":"publish","params":{"event_type":"x","data":1}}"#,
        // Members the fast path leaves to the table: metadata, unknown, repeated, missing.
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1,"metadata":{}}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1,"extra":2}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1},"extra":2}"#,
        #"{"jsonrpc":"2.0","id":1,"id":2,"method":"publish","params":{"event_type":"x","data":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","event_type":"y","data":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1,"data":2}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"data":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x"}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish"}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":[]}"#,
        // Escapes and other strings the parser spells out.
        #"{"jsonrpc":"2.0","id":1,"method":"publ\u0069sh","params":{"event_type":"x","data":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x\/y","data":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"café","data":1}}"#,
        #"{"jsonrpc":"2.0","id":"\u0041","method":"publish","params":{"event_type":"x","data":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":"\u00e9"}}"#,
        // Invalid JSON.
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":[1,]}}"#,
        #"{"jsonrpc":"2.0","id":01,"method":"publish","params":{"event_type":"x","data":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1}} x"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":1},}"#,
        #"{"jsonrpc":"2.0" "id":1,"method":"publish","params":{"event_type":"x","data":1}}"#,
        "", "{", "{}", "null",
    ])
    func declinesEverythingElse(line: String) {
        #expect(scan(line) == nil)
    }

    @Test func declinesDataNestedDeeperThanTheParserAllows() throws {
        let deep =
            String(repeating: "[", count: JSONParser.maximumDepth)
            + String(repeating: "]", count: JSONParser.maximumDepth)
        #expect(
            scan(#"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":\#(deep)}}"#) == nil)
        let fits =
            String(repeating: "[", count: JSONParser.maximumDepth - 2)
            + String(repeating: "]", count: JSONParser.maximumDepth - 2)
        try expectAgrees(#"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":\#(fits)}}"#)
    }

    @Test func reusesThePreviousTypeOnlyWhenItSpellsTheSame() throws {
        let previous = "market.tick.AAPL.previous-type"
        let same = try #require(
            scan(
                #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"market.tick.AAPL.previous-type","data":1}}"#,
                previousType: previous))
        #expect(same.eventType == previous)
        let other = try #require(
            scan(
                #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"market.tick.AAPL.previous-typf","data":1}}"#,
                previousType: previous))
        #expect(other.eventType == "market.tick.AAPL.previous-typf")
        let shorter = try #require(
            scan(
                #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"market","data":1}}"#,
                previousType: previous))
        #expect(shorter.eventType == "market")
    }

    /// Random lines around the request's shape: whenever the scan reads one, the parser
    /// reads the same request from it.
    @Test func randomLinesAreReadAsTheParserReadsThemOrDeclined() throws {
        var generator = SeededGenerator(seed: 0x5eed_0f_12)
        let ids = [#"1"#, #""a""#, "-3", "2.5", "null", "true", #""\u0031""#, "007", "[]"]
        let types = [#""tick""#, #""a.b""#, "1", #""x\n""#, #""é""#, #""""#]
        let datas = [
            #"{"a":[1,2]}"#, "null", #""s""#, "[1,]", "{", #"{"k":"\/"}"#, "1e5", "-", #"{"a":{"b":{"c":[]}}}"#,
        ]
        var read = 0
        for _ in 0..<4000 {
            var params = [
                #""event_type":\#(types.randomElement(using: &generator)!)"#,
                #""data":\#(datas.randomElement(using: &generator)!)"#,
            ]
            if Int.random(in: 0..<6, using: &generator) == 0 { params.append(#""metadata":{}"#) }
            if Int.random(in: 0..<6, using: &generator) == 0 { params.removeFirst() }
            params.shuffle(using: &generator)
            var members = [
                #""jsonrpc":"2.0""#, #""method":"publish""#, #""id":\#(ids.randomElement(using: &generator)!)"#,
                #""params":{\#(params.joined(separator: ","))}"#,
            ]
            if Int.random(in: 0..<8, using: &generator) == 0 { members.removeLast() }
            members.shuffle(using: &generator)
            let space = Int.random(in: 0..<3, using: &generator) == 0 ? " " : ""
            let line = "\(space){\(members.joined(separator: ",\(space)"))}\(space)"
            guard scan(line) != nil else { continue }
            read += 1
            try expectAgrees(line)
        }
        #expect(read > 200, "the fast path should read a fair share of the valid lines, read \(read)")
    }
}
