import Foundation
import Testing
import TradewireClient
import TradewireJSON
import TradewirePipeline
import TradewireTesting

@testable import TradewireServer

/// The error table of PROTOCOL §2 and the JSON-RPC 2.0 specification's own examples.
@Suite struct ConformanceTests {
    @Test func specificationExamples() async throws {
        try await withDaemon { path, _ in
            // Parse error (id null), invalid request, invalid JSON in a batch, empty batch.
            var a = try exchange(path, [#"{"jsonrpc":"2.0","method":"foobar,"params":"bar","baz]"#])
            #expect(a.count == 1 && a[0].errorCode == -32700 && a[0]["id"] == .null && a[0].errorType == "parse_error")
            a = try exchange(path, [#"{"jsonrpc":"2.0","method":1,"params":"bar"}"#])
            #expect(a.count == 1 && a[0].errorCode == -32600 && a[0].errorType == "invalid_request")
            a = try exchange(path, [#"[{"jsonrpc":"2.0","method":"ping","id":"1"},{"jsonrpc":"2.0","method"]"#])
            #expect(a.count == 1 && a[0].errorCode == -32700)
            a = try exchange(path, ["[]"])
            #expect(a.count == 1 && a[0].errorCode == -32600 && a[0].arrayValue == nil)
            // Invalid batches: one error per entry, in an array.
            a = try exchange(path, ["[1]"])
            #expect(a.count == 1 && a[0].arrayValue?.count == 1 && a[0].arrayValue?[0].errorCode == -32600)
            a = try exchange(path, ["[1,2,3]"])
            #expect(a[0].arrayValue?.map(\.errorCode) == [-32600, -32600, -32600])
            // The mixed batch: requests, notifications, an invalid entry, an unknown method.
            a = try exchange(
                path,
                [
                    #"[{"jsonrpc":"2.0","method":"ping","id":"1"},{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"ping","id":"2"},{"foo":"boo"},{"jsonrpc":"2.0","method":"foo.get","params":{"name":"myself"},"id":"5"},{"jsonrpc":"2.0","method":"get_stats","id":"9"}]"#
                ])
            let batch = try #require(a.first?.arrayValue)
            #expect(batch.count == 5)
            var byID: [String: JSONValue] = [:]
            for response in batch { byID[response["id"]?.stringValue ?? "null"] = response }
            #expect(byID["1"]?["result"]?["pong"] == true)
            #expect(byID["2"]?["result"]?["pong"] == true)
            #expect(byID["null"]?.errorCode == -32600)
            #expect(byID["5"]?.errorCode == -32601 && byID["5"]?.errorType == "method_not_found")
            #expect(byID["9"]?["result"]?["connections"] != nil)
            // A batch of notifications only: nothing at all comes back.
            a = try exchange(
                path,
                [
                    #"[{"jsonrpc":"2.0","method":"ping"},{"jsonrpc":"2.0","method":"publish","params":{"event_type":"n"}}]"#
                ])
            #expect(a.isEmpty)
            // Notifications are never answered, not even errors.
            a = try exchange(
                path, [#"{"jsonrpc":"2.0","method":"nope"}"#, #"{"jsonrpc":"2.0","method":"ping","params":[1]}"#])
            #expect(a.isEmpty)
        }
    }

    @Test func errorTableRows() async throws {
        try await withDaemon { path, _ in
            let a = try exchange(
                path,
                [
                    #"{"jsonrpc":"2.0","id":1,"method":"nope"}"#,
                    #"{"jsonrpc":"2.0","id":2,"method":"ping","params":{"extra":1}}"#,
                    #"{"jsonrpc":"2.0","id":3,"method":"publish","params":{"event_type":123}}"#,
                    #"{"jsonrpc":"2.0","id":4,"method":"run_pipeline","params":{"symbols":["AAPL","MSFT","bad sym!"]}}"#,
                    #"{"jsonrpc":"2.0","id":5,"method":"ping","params":[1]}"#,
                    #"{"jsonrpc":"2.0","id":6,"method":"ping","params":"x"}"#,
                    #"{"jsonrpc":"2.0","id":7,"method":"get_event_history","params":{"limit":-1}}"#,
                    #"{"jsonrpc":"2.0","id":8,"method":"unsubscribe","params":{}}"#,
                    #"{"jsonrpc":"2.0","id":9,"method":"publish","params":{"event_type":"signals_ready","data":[{"symbol":"AAPL"}]}}"#,
                    #"{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}"#,
                    #"{"jsonrpc":"1.0","id":"old","method":"ping"}"#,
                    #"{"jsonrpc":"2.0","id":12,"method":"start_loop","params":{"interval_seconds":0.01}}"#,
                    #"{"jsonrpc":"2.0","id":13,"method":"run_pipeline","params":{"strategy":"Astrology"}}"#,
                ])
            func answer(_ id: JSONValue) -> JSONValue? { a.first { $0["id"] == id } }
            #expect(answer(1)?.errorCode == -32601)
            #expect(answer(2)?.errorCode == -32602)
            #expect(answer(2)?["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/extra")
            #expect(answer(3)?.errorCode == -32602 && answer(3)?.errorType == "invalid_params")
            #expect(answer(4)?["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/symbols/2")
            #expect(answer(5)?.errorCode == -32602)
            #expect(answer(6)?.errorCode == -32600)
            #expect(answer(7)?.errorCode == -32602)
            #expect(answer(8)?.errorCode == -32602)
            #expect(answer(9)?["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/data/0/action")
            #expect(answer(.null)?.errorCode == -32600)
            #expect(answer("old")?.errorCode == -32600)
            #expect(answer(12)?.errorCode == -32602)
            #expect(answer(13)?["error"]?["data"]?["errors"]?.arrayValue?.first?["path"] == "/strategy")
        }
    }

    @Test func idsAreEchoedExactly() async throws {
        try await withDaemon { path, _ in
            let socket = try LineSocket(path: path)
            socket.setReadTimeout(seconds: 10)
            for id in [#""abc""#, "12345678901234567890123", "-1.5e3", "null", "0"] {
                socket.write(Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"ping"}"#.utf8) + [10])
                let line = try #require(socket.readLine())
                #expect(
                    String(decoding: line, as: UTF8.self) == #"{"jsonrpc":"2.0","id":\#(id),"result":{"pong":true}}"#)
            }
        }
    }

    @Test func overlongLineThenPingOnTheSameConnection() async throws {
        try await withDaemon(maxMessageBytes: 4096) { path, _ in
            let big =
                #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"x","data":""#
                + String(repeating: "a", count: 100_000) + #""}}"#
            let a = try exchange(path, [big, #"{"jsonrpc":"2.0","id":2,"method":"ping"}"#])
            #expect(a.count == 2)
            #expect(a[0].errorCode == -32600 && a[0].errorType == "message_too_large" && a[0]["id"] == .null)
            #expect(a[1]["result"]?["pong"] == true)
        }
    }

    @Test func pipelineErrors() async throws {
        try await withDaemon(provider: FailingProvider()) { path, _ in
            let a = try exchange(
                path, [#"{"jsonrpc":"2.0","id":1,"method":"run_pipeline","params":{"symbols":["AAPL"]}}"#], expecting: 1
            )
            #expect(a.first?.errorCode == -32010 && a.first?.errorType == "no_market_data")
        }
        try await withDaemon(provider: HangingProvider(), shutdownGrace: .milliseconds(200)) { path, _ in
            let a = try exchange(
                path, [#"{"jsonrpc":"2.0","id":1,"method":"run_pipeline","params":{"timeout_ms":100}}"#], expecting: 1)
            #expect(a.first?.errorCode == -32011 && a.first?.errorType == "pipeline_timeout")
            #expect(a.first?["error"]?["data"]?["stage"] == "none")
            #expect(a.first?["error"]?["data"]?["iteration"] == 1)
        }
    }

    @Test func overloadedAndShuttingDown() async throws {
        try await withDaemon(provider: HangingProvider(), maxInFlight: 2, shutdownGrace: .milliseconds(300)) {
            path, daemon in
            let socket = try LineSocket(path: path)
            socket.setReadTimeout(seconds: 10)
            for id in 1...3 {
                socket.write(
                    Array(#"{"jsonrpc":"2.0","id":\#(id),"method":"run_pipeline","params":{"timeout_ms":2000}}"#.utf8)
                        + [10])
            }
            let third = try #require(socket.readLine().flatMap { try? JSONParser.parse($0) })
            #expect(third["id"] == 3 && third.errorCode == -32001 && third.errorType == "overloaded")
            // Ask for shutdown on another connection: it gets ok, then everyone hears `shutdown`.
            let other = try LineSocket(path: path)
            other.setReadTimeout(seconds: 10)
            let ok = other.roundTrip(#"{"jsonrpc":"2.0","id":"s","method":"shutdown"}"#)
            #expect(ok?["result"]?["ok"] == true)
            let notice = other.readLine().flatMap { try? JSONParser.parse($0) }
            #expect(notice?["method"] == "shutdown")
            let during = other.roundTrip(#"{"jsonrpc":"2.0","id":"late","method":"ping"}"#)
            #expect(during?.errorCode == -32000 && during?.errorType == "shutting_down")
        }
    }

    @Test func aClientThatVanishesMidCallCostsNothing() async throws {
        try await withDaemon(provider: HangingProvider(), shutdownGrace: .milliseconds(300)) { path, daemon in
            for _ in 0..<20 {
                let socket = try LineSocket(path: path)
                socket.write(
                    Array(#"{"jsonrpc":"2.0","id":1,"method":"run_pipeline","params":{"timeout_ms":300}}"#.utf8) + [10])
                socket.write(
                    Array(#"{"jsonrpc":"2.0","id":2,"method":"subscribe","params":{"event_type":"*"}}"#.utf8) + [10])
            }  // each socket closes here, with its pipeline still running
            let client = try await TradewireClient.connect(socketPath: path)
            #expect(try await client.ping())
            // Their subscriptions went with them, and the abandoned runs end at their deadline.
            let deadline = ContinuousClock.now + .seconds(10)
            while daemon.connections.pendingWork > 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(daemon.connections.pendingWork == 0)
            let stats = try await client.call("get_stats")
            #expect(stats["total_subscribers"] == 0 && stats["connections"] == 1)
            #expect(stats["pipeline"]?["timeouts"] == 20)
            await client.close()
        }
    }

    @Test func hostileInputLeavesTheDaemonAnswering() async throws {
        try await withDaemon { path, _ in
            var generator = SystemRandomNumberGenerator()
            var lines: [String] = [
                String(repeating: "[", count: 100_000), String(repeating: "{\"a\":", count: 10_000),
                "1e999999999", "-", "\"\\ud800\"", "{\"jsonrpc\":\"2.0\",\"id\":1e400,\"method\":\"ping\"}",
                "\u{0}\u{1}\u{2}", "null", "true", "\"str\"", "{}",
            ]
            let methods = [
                "subscribe", "unsubscribe", "publish", "run_pipeline", "get_stats", "get_event_history",
                "start_loop", "stop_loop", "get_status", "ping", "rpc.discover",
            ]
            let hostileValues = [
                "null", "-1", "1e308", "\"\"", "[]", "{}", "[[[[1]]]]", "true", "\"*\"", "99999999999999999999",
            ]
            for method in methods {
                for key in [
                    "event_type", "symbols", "since_seq", "limit", "data", "metadata", "timeout_ms", "subscription",
                    "interval_seconds", "include_data", "strategy", "market_data", "dry_run",
                ] {
                    for value in hostileValues {
                        lines.append(#"{"jsonrpc":"2.0","id":7,"method":"\#(method)","params":{"\#(key)":\#(value)}}"#)
                    }
                }
            }
            for _ in 0..<1500 {
                let length = Int.random(in: 1...200, using: &generator)
                let bytes = (0..<length).map { _ in UInt8.random(in: 32...126, using: &generator) }
                lines.append(String(decoding: bytes, as: UTF8.self))
            }
            let socket = try LineSocket(path: path)
            socket.setReadTimeout(seconds: 30)
            for line in lines {
                socket.write(Array(line.utf8) + [10])
            }
            let client = try await TradewireClient.connect(socketPath: path)
            #expect(try await client.ping())
            await client.close()
            _ = try exchange(path, [#"{"jsonrpc":"2.0","id":1,"method":"stop_loop"}"#])
        }
    }
}
