import Testing
import TradewireJSON

@testable import TradewireRPC

@Suite struct LineFramerTests {
    private func frames(_ chunks: [String], limit: Int = 16) -> [LineFramer.Frame] {
        var framer = LineFramer(maximumLineBytes: limit)
        var out: [LineFramer.Frame] = []
        for chunk in chunks {
            Array(chunk.utf8).withUnsafeBytes { framer.feed($0) { out.append($0) } }
        }
        return out
    }

    private func line(_ s: String) -> LineFramer.Frame { .line(Array(s.utf8)) }

    @Test func splitsAcrossChunksAcceptsCRLFAndSkipsBlankLines() {
        #expect(frames(["ab", "c\nde", "f\r\n\n  \r\ng\n"]) == [line("abc"), line("def"), line("g")])
    }

    @Test func anOverlongLineIsDroppedOnceAndTheStreamGoesOn() {
        #expect(
            frames([String(repeating: "x", count: 10), String(repeating: "y", count: 10), "z\nok\n"])
                == [.tooLong, line("ok")])
        #expect(frames([String(repeating: "x", count: 17) + "\nok\n"]) == [.tooLong, line("ok")])
        // Exactly at the limit is fine; a trailing \r does not count.
        #expect(frames([String(repeating: "x", count: 16) + "\r\n"]) == [line(String(repeating: "x", count: 16))])
    }
}

@Suite struct MessageParserTests {
    @Test func paramsFormsAndIDs() {
        guard
            case .single(.request(let r)) = RPCMessageParser.parse(
                Array(#"{"jsonrpc":"2.0","id":"a","method":"m","params":[]}"#.utf8))
        else {
            Issue.record("expected a request")
            return
        }
        #expect(r.id == "a" && r.params.isEmpty && !r.isNotification)
        guard case .single(.request(let n)) = RPCMessageParser.parse(Array(#"{"jsonrpc":"2.0","method":"m"}"#.utf8))
        else {
            Issue.record("expected a notification")
            return
        }
        #expect(n.isNotification)
        guard
            case .single(.invalid(let e, let id)) = RPCMessageParser.parse(
                Array(#"{"jsonrpc":"2.0","id":5,"method":"m","params":"x"}"#.utf8))
        else {
            Issue.record("expected invalid")
            return
        }
        #expect(e.code == -32600 && id == 5)
        guard
            case .single(.invalid(let positional, _)) = RPCMessageParser.parse(
                Array(#"{"jsonrpc":"2.0","id":6,"method":"m","params":[1]}"#.utf8))
        else {
            Issue.record("expected invalid params")
            return
        }
        #expect(positional.code == -32602)
    }

    @Test func batchLimits() {
        guard case .failure(let empty) = RPCMessageParser.parse(Array("[]".utf8)) else {
            Issue.record("empty batch"); return
        }
        #expect(empty.type == "invalid_request")
        let big =
            "[" + Array(repeating: #"{"jsonrpc":"2.0","method":"ping"}"#, count: 1001).joined(separator: ",") + "]"
        guard case .failure(let tooLarge) = RPCMessageParser.parse(Array(big.utf8)) else {
            Issue.record("large batch"); return
        }
        #expect(tooLarge.type == "batch_too_large" && tooLarge.code == -32600)
        guard case .failure(let parse) = RPCMessageParser.parse(Array("{".utf8)) else {
            Issue.record("parse error"); return
        }
        #expect(parse.code == -32700)
    }

    @Test func errorsRenderWithDataType() throws {
        let error = RPCError.invalidParams(path: "/symbols/2", "invalid symbol")
        let json = error.json
        #expect(json["code"] == -32602)
        #expect(json["data"]?["type"] == "invalid_params")
        #expect(json["data"]?["errors"] == [["path": "/symbols/2", "message": "invalid symbol"]])
        let line = String(decoding: RPCResponse.failure(id: .null, error: .shuttingDown), as: UTF8.self)
        #expect(
            line
                == #"{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"The daemon is shutting down","data":{"type":"shutting_down"}}}"#
        )
    }
}

@Suite struct DispatcherTests {
    @Test func unknownMethodsAndParamsAreRefusedBeforeTheHandler() {
        var registry = MethodRegistry<Int>()
        registry.register(
            MethodDescription(
                "echo", summary: "", params: [ParamDescription("x", schema: [:], summary: "")], result: [:])
        ) { request, context in
            .result(["x": request.params["x"] ?? .null, "context": JSONValue(context)] as JSONValue)
        }
        let dispatcher = registry.freeze()
        guard
            case .success(let bytes) = dispatcher.dispatch(
                RPCRequest(id: 1, method: "echo", params: ["x": 3]), context: 7)
        else {
            Issue.record("expected success"); return
        }
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"x":3,"context":7}"#)
        guard case .failure(let unknown) = dispatcher.dispatch(RPCRequest(id: 1, method: "nope"), context: 0) else {
            Issue.record("expected method_not_found"); return
        }
        #expect(unknown.code == -32601)
        guard
            case .failure(let extra) = dispatcher.dispatch(
                RPCRequest(id: 1, method: "echo", params: ["y": 1]), context: 0)
        else {
            Issue.record("expected invalid_params"); return
        }
        #expect(extra.code == -32602)
        let document = dispatcher.openRPCDocument(title: "t", version: "1")
        #expect(document["methods"]?.arrayValue?.first?["paramStructure"] == "by-name")
    }
}
