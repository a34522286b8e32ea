import Foundation
import Testing
import TradewireClient
import TradewireJSON
import TradewirePipeline
import TradewireRPC
import TradewireTesting

@testable import TradewireServer

/// Issue 7's protocol details, the level-2 pipeline rules for client events, and the bounds
/// on what one connection can make the daemon hold.
@Suite struct HardeningTests {
    // MARK: protocol details

    @Test func nullParamsIsAnInvalidRequest() async throws {
        try await withDaemon { path, _ in
            let a = try exchange(path, [#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#])
            #expect(a.count == 1 && a[0].errorCode == -32600 && a[0]["id"] == 1)
        }
    }

    @Test func unsubscribingAnUnknownIdRemovesNothing() async throws {
        try await withDaemon { path, _ in
            let a = try exchange(
                path,
                [
                    #"{"jsonrpc":"2.0","id":1,"method":"unsubscribe","params":{"subscription":"s-999"}}"#,
                    #"{"jsonrpc":"2.0","id":2,"method":"unsubscribe","params":{"subscription":"bogus"}}"#,
                ], expecting: 2)
            #expect(a.count == 2)
            for answer in a { #expect(answer["result"] == ["removed": 0]) }
        }
    }

    @Test func sinceSeqAheadOfTheNewestEventIsRefused() async throws {
        try await withDaemon { path, _ in
            let client = try await TradewireClient.connect(socketPath: path)
            try await client.publish("x")
            for (method, params) in [
                ("subscribe", ["event_type": "*", "since_seq": 2] as JSONObject),
                ("get_event_history", ["since_seq": 2] as JSONObject),
            ] {
                let error = await rpcError { _ = try await client.call(method, params) }
                #expect(error?.code == -32602, "\(method) accepted a since_seq ahead of the newest event")
                #expect(error?.details["errors"]?.arrayValue?.first?["path"] == "/since_seq")
                #expect(error?.message.contains("ahead of the newest event") == true)
            }
            // since_seq equal to the newest is fine (nothing to replay).
            #expect(try await client.call("get_event_history", ["since_seq": 1])["events"] == [])
            await client.close()
        }
    }

    @Test func aShutdownInsideABatchIsAnsweredInsideTheArray() async throws {
        try await withDaemon { path, _ in
            let socket = try LineSocket(path: path)
            socket.setReadTimeout(seconds: 10)
            socket.write(
                Array(
                    #"[{"jsonrpc":"2.0","id":1,"method":"shutdown"},{"jsonrpc":"2.0","id":2,"method":"ping"}]"#.utf8)
                    + [10])
            let first = try #require(socket.readLine().flatMap { try? JSONParser.parse($0) })
            let answers = try #require(first.arrayValue)
            #expect(Set(answers.compactMap { $0["id"]?.intValue }) == [1, 2])
            #expect(answers.contains { $0["result"] == ["ok": true] })
            var sawShutdown = false
            while let line = socket.readLine() {
                if (try? JSONParser.parse(line))?["method"] == "shutdown" { sawShutdown = true }
            }
            #expect(sawShutdown)
        }
    }

    @Test func aRunTakesAtMostTenThousandSymbols() async throws {
        try await withDaemon { path, _ in
            let client = try await TradewireClient.connect(socketPath: path)
            let symbols = JSONValue.array((0..<10_001).map { JSONValue("S\($0)") })
            let error = await rpcError { _ = try await client.call("run_pipeline", ["symbols": symbols]) }
            #expect(error?.code == -32602, "10 001 symbols were accepted")
            #expect(error?.details["errors"]?.arrayValue?.first?["path"] == "/symbols")
            await client.close()
        }
    }

    // MARK: no way around risk

    @Test(arguments: [OrchestratorMode.async, .sync])
    func aClientApprovedReadyReachesNoBroker(mode: OrchestratorMode) async throws {
        try await withDaemon(mode: mode) { path, daemon in
            let client = try await TradewireClient.connect(socketPath: path)
            let before = try await client.call("get_stats")["published_by_type"]?["executed_ready"]
            let sell = try JSONParser.parse(
                #"[{"symbol":"AAPL","action":"SELL","strategy_name":"x","confidence":1,"price":1000000,"qty":1,"approved":true}]"#
            )
            let receipt = try await client.publish("approved_ready", data: sell, metadata: ["iteration_id": "t-1"])
            #expect(receipt["iteration"] == nil)
            #expect(receipt["seq"] != nil)
            try await Task.sleep(for: .milliseconds(200))
            let after = try await client.call("get_stats")["published_by_type"]?["executed_ready"]
            #expect(before == after, "a client's approved_ready must drive no execution")
            await client.close()
        }
    }

    @Test(arguments: [OrchestratorMode.async, .sync])
    func clientSignalsAreSizedByRiskOnFetchedData(mode: OrchestratorMode) async throws {
        try await withDaemon(mode: mode) { path, _ in
            let client = try await TradewireClient.connect(socketPath: path)
            let signals = try JSONParser.parse(
                #"[{"symbol":"AAPL","action":"BUY","strategy_name":"mine","confidence":0.9,"price":0.01},{"symbol":"MSFT","action":"HOLD","strategy_name":"mine","confidence":0.5}]"#
            )
            let receipt = try await client.publish("validated_ready", data: signals)
            #expect(receipt["completed"] == true)
            #expect(receipt["signals"] == 2)
            #expect(receipt["errors"] == [])
            let approved = try #require(receipt["approved"]?.intValue)
            let rejected = try #require(receipt["rejected"]?.intValue)
            #expect(approved + rejected == 2)
            #expect(receipt["executed"]?.intValue == approved - 1, "the HOLD is approved but never executed")
            // The fill is at the broker's price (last close ± slippage), never the client's $0.01.
            let history = try await client.call("get_event_history", ["event_type": "executed_ready", "limit": 1])
            let fill = history["events"]?.arrayValue?.first?["data"]?.arrayValue?.first
            #expect(fill?["executed"] == true)
            #expect((fill?["fill_price"]?.doubleValue ?? 0) > 1)
            await client.close()
        }
    }

    @Test func absurdClientValuesAreInvalidParamsWithAPath() async throws {
        try await withDaemon { path, _ in
            let client = try await TradewireClient.connect(socketPath: path)
            for (signal, pointer) in [
                (#"{"price":-1}"#, "/data/0/price"), (#"{"price":1e300}"#, "/data/0/price"),
                (#"{"qty":1000000000000,"price":100}"#, "/data/0/qty"),
                (#"{"qty":900000000,"price":900000000}"#, "/data/0/qty"),
            ] {
                var object = try JSONParser.parse(signal).objectValue ?? [:]
                for (key, value) in [
                    ("symbol", "AAPL"), ("action", "BUY"), ("strategy_name", "x"),
                ] as [(String, JSONValue)] { object[key] = value }
                object["confidence"] = 1
                let error = await rpcError {
                    _ = try await client.publish("signals_ready", data: [.object(object)])
                }
                #expect(error?.code == -32602, "\(signal) was accepted")
                #expect(error?.details["errors"]?.arrayValue?.first?["path"]?.stringValue == pointer)
            }
            #expect(try await client.ping(), "the daemon is still serving")
            await client.close()
        }
    }

    // MARK: bounded memory per connection

    /// 200 history records of 8 KiB: each full history answer is about 1.7 MB.
    private func fillHistory(_ path: String) async throws {
        let client = try await TradewireClient.connect(socketPath: path)
        let blob = JSONValue(String(repeating: "x", count: 8 << 10))
        for _ in 0..<200 { try await client.publish("big", data: blob) }
        await client.close()
    }

    @Test func aBatchOfHugeAnswersToAClientThatNeverReadsStaysBounded() async throws {
        try await withDaemon(historyCapacity: 200, outboxBudget: 1 << 20) { path, daemon in
            try await fillHistory(path)
            let socket = try LineSocket(path: path)
            socket.setReadTimeout(seconds: 10)
            let calls = (1...40).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"get_event_history"}"# }
            socket.write(Array(("[" + calls.joined(separator: ",") + "]\n").utf8))
            try await Task.sleep(for: .milliseconds(500))
            let connection = try #require(daemon.connections.live.max { $0.id < $1.id })
            // One answer may exceed the budget; forty may not be held.
            #expect(connection.outbox.queuedBytes < 2 * (1 << 20) + (2 << 20))
            let answers = try #require(socket.readLine().flatMap { try? JSONParser.parse($0) }?.arrayValue)
            #expect(answers.count == 40)
            let succeeded = answers.filter { $0["result"] != nil }.count
            #expect(succeeded >= 1)
            #expect(answers.filter { $0.errorCode == -32001 && $0.errorType == "overloaded" }.count == 40 - succeeded)
        }
    }

    @Test func linesFromAClientThatNeverReadsWaitUntilItDrains() async throws {
        try await withDaemon(historyCapacity: 200, outboxBudget: 1 << 20) { path, daemon in
            try await fillHistory(path)
            let socket = try LineSocket(path: path)
            socket.setReadTimeout(seconds: 10)
            let calls = (1...40).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"get_event_history"}"# + "\n" }
            socket.write(Array(calls.joined().utf8))
            try await Task.sleep(for: .milliseconds(500))
            let connection = try #require(daemon.connections.live.max { $0.id < $1.id })
            #expect(connection.outbox.queuedBytes < (1 << 20) + (2 << 20), "reading stops once over budget")
            // Nothing is lost: once the client reads, every call is answered.
            var ids = Set<Int>()
            while ids.count < 40, let line = socket.readLine() {
                if let id = (try? JSONParser.parse(line))?["id"]?.intValue { ids.insert(id) }
            }
            #expect(ids == Set(1...40))
        }
    }

    @Test func noAnswerIsBuiltBeyondTheResponseLimit() async throws {
        try await withDaemon(historyCapacity: 200, maxResponseBytes: 256 << 10) { path, _ in
            try await fillHistory(path)
            let client = try await TradewireClient.connect(socketPath: path)
            let error = await rpcError { _ = try await client.call("get_event_history") }
            #expect(error?.code == -32602)
            #expect(error?.details["errors"]?.arrayValue?.first?["path"] == "/limit")
            #expect(error?.message.contains("would exceed 262144 bytes") == true)
            // Narrower questions are answered.
            let page = try await client.call("get_event_history", ["limit": 10])
            #expect(page["events"]?.arrayValue?.count == 10)
            let bare = try await client.call("get_event_history", ["include_data": false])
            #expect(bare["events"]?.arrayValue?.count == 200)
            await client.close()
        }
    }

    @Test func connectionsBeyondTheLimitGetOneErrorLineAndAreClosed() async throws {
        try await withDaemon(maxConnections: 2) { path, _ in
            let first = try LineSocket(path: path)
            var second: LineSocket? = try LineSocket(path: path)
            for socket in [first, second!] {
                socket.setReadTimeout(seconds: 10)
                #expect(socket.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)?["result"] == ["pong": true])
            }
            let third = try LineSocket(path: path)
            third.setReadTimeout(seconds: 10)
            let line = try #require(third.readLine().flatMap { try? JSONParser.parse($0) })
            #expect(line.errorCode == -32001 && line.errorType == "overloaded" && line["id"] == .null)
            #expect(third.readLine() == nil)
            // A slot frees when a client leaves.
            second = nil
            try await Task.sleep(for: .milliseconds(200))
            let fourth = try LineSocket(path: path)
            fourth.setReadTimeout(seconds: 10)
            #expect(fourth.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)?["result"] == ["pong": true])
        }
    }
}

/// The JSON-RPC error a call failed with (nil when it succeeded or failed otherwise).
func rpcError(_ body: () async throws -> Void) async -> RPCError? {
    do {
        try await body()
        return nil
    } catch let error as ClientError {
        if case .rpc(let rpc) = error { return rpc }
        return nil
    } catch {
        return nil
    }
}
