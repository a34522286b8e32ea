import Foundation
import Synchronization
import Testing
import TradewireClient
import TradewireJSON
import TradewirePipeline
import TradewireTesting

@testable import TradewireServer

#if canImport(Glibc)
    import Glibc
#endif

/// Every method through `TradewireClient`, and the connection behaviours of PROTOCOL §1–§6.
@Suite struct LiveSocketTests {
    @Test func everyMethodThroughTheClient() async throws {
        try await withDaemon { path, _ in
            let client = try await TradewireClient.connect(socketPath: path)
            let watcher = try await TradewireClient.connect(socketPath: path)
            #expect(try await client.ping())
            let subscription = try await watcher.subscribe("demo.*")
            #expect(subscription.hasPrefix("s-"))
            #expect(try await watcher.subscribe("demo.*") == subscription)
            let receipt = try await client.publish("demo.one", data: ["x": 1], metadata: ["m": "v"])
            #expect(receipt["seq"] == 1 && receipt["subscribers"] == 1)
            var events = watcher.notifications.makeAsyncIterator()
            let first = try #require(await events.next())
            #expect(first.method == "event")
            #expect(first.params["subscription"] == JSONValue(subscription))
            #expect(first.params["event"]?["data"] == ["x": 1])
            #expect(first.params["event"]?["metadata"]?["m"] == "v")

            let run = try await client.call("run_pipeline", ["symbols": ["aapl", "MSFT"], "dry_run": true])
            for key in [
                "iteration", "iteration_id", "symbols", "duration_seconds", "market_data", "signals",
                "validated_signals", "approved_signals", "rejected_signals", "execution_results", "audit_report",
                "errors",
                "dry_run",
            ] {
                #expect(run[key] != nil, "run_pipeline lacks \(key)")
            }
            #expect(run["symbols"] == ["AAPL", "MSFT"])
            #expect(run["market_data"]?["AAPL"]?["bars"] == 252)

            let stats = try await client.call("get_stats")
            #expect(stats["total_subscribers"] == 1 && stats["event_types"]?["demo.*"] == 1)
            #expect(stats["internal_handlers"]?["data_ready"] == 1)
            #expect(stats["pipeline"]?["runs"] == 1)
            #expect(stats["pipeline"]?["stages"]?["risk"]?["count"] == 1)

            let history = try await client.call("get_event_history", ["event_type": "demo.*", "include_data": false])
            #expect(history["events"]?.arrayValue?.count == 1)
            #expect(history["events"]?.arrayValue?.first?["data"] == nil)
            #expect(history["events"]?.arrayValue?.first?["subscriber_count"] == 1)
            // Capacity: the ring's, or with a journal its retention (PROTOCOL §10).
            let capacity: JSONValue = TestStorage.current == .journal ? 10_000_000 : 1000
            #expect(history["oldest_seq"] == 1 && history["capacity"] == capacity)

            let started = try await client.call("start_loop", ["interval_seconds": 0.2])
            #expect(started == ["running": true, "interval_seconds": 0.2])
            let status = try await client.call("get_status")
            #expect(status["api_level"] == 2 && status["mode"] == "async" && status["socket"] == JSONValue(path))
            #expect(status["loop"]?["running"] == true)
            let stopped = try await client.call("stop_loop")
            #expect(stopped["running"] == false)
            #expect((stopped["iterations"]?.intValue ?? 0) >= 1)

            let removed = try await watcher.call("unsubscribe", ["subscription": JSONValue(subscription)])
            #expect(removed == ["removed": 1])
            let discover = try await client.call("rpc.discover")
            let names = discover["methods"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            #expect(
                Set(names) == [
                    "subscribe", "unsubscribe", "publish", "run_pipeline", "get_stats", "get_event_history",
                    "start_loop", "stop_loop", "get_status", "ping", "rpc.discover", "shutdown", "register_stage",
                    "unregister_stage", "get_portfolio", "set_trading_state", "ack", "nak", "get_consumers",
                    "delete_consumer",
                    "get_dead_letters", "retry_dead_letter", "discard_dead_letter",
                ])
            #expect(try await client.call("shutdown") == ["ok": true])
            await client.close()
            await watcher.close()
        }
    }

    @Test(arguments: [TestStorage.journal, .ephemeral])
    func aClientThatShutsItsWritingSideGetsEveryReceiptThenTheClose(storage: TestStorage) async throws {
        // `printf … | socat`: publishes pipelined, then EOF. With the journal, the receipts
        // are queued by the writer thread once each batch commits; the connection closes once
        // the last one is written, not before it and not never.
        try await withDaemon(storage: storage) { path, _ in
            for round in 0..<20 {
                let socket = try LineSocket(path: path)
                socket.setReadTimeout(seconds: 10)
                let count = 1 + round * 13
                var lines: [UInt8] = []
                for i in 0..<count {
                    lines += Array(
                        #"{"jsonrpc":"2.0","id":\#(i),"method":"publish","params":{"event_type":"half.closed","data":\#(i)}}"#
                            .utf8)
                    lines.append(UInt8(ascii: "\n"))
                }
                socket.write(lines)
                #expect(shutdown(socket.fd, Int32(SHUT_WR)) == 0)
                var ids: [Int] = []
                while let line = socket.readLine() {
                    let reply = try JSONParser.parse(line)
                    #expect(reply["result"]?["event_type"] == "half.closed", "\(reply)")
                    if let id = reply["id"]?.intValue { ids.append(id) }
                }
                // The daemon closed the connection (EOF, not the read timeout), after every receipt.
                var byte: UInt8 = 0
                #expect(read(socket.fd, &byte, 1) == 0, "round \(round): still open")
                #expect(ids.sorted() == Array(0..<count), "round \(round)")
            }
        }
    }

    @Test func aClientPublishedPipelineEventRunsTheChain() async throws {
        try await withDaemon { path, _ in
            let client = try await TradewireClient.connect(socketPath: path)
            let result = try await client.publish(
                "signals_ready",
                data: [["symbol": "aapl", "action": "HOLD", "strategy_name": "Manual", "confidence": 0.9]])
            #expect(result["completed"] == true && result["iteration"] == 1)
            let history = try await client.call("get_event_history")
            let types = history["events"]?.arrayValue?.compactMap { $0["event_type"]?.stringValue }
            #expect(types == ["signals_ready", "validated_ready", "approved_ready", "executed_ready", "audit_ready"])
            #expect(history["events"]?.arrayValue?.first?["metadata"]?["iteration_id"] == result["iteration_id"])
            await client.close()
        }
    }

    @Test func slowConsumerNeverSlowsThePublisherAndLearnsWhatItMissed() async throws {
        let budget = 1 << 20
        try await withDaemon(historyCapacity: 100, outboxBudget: budget) { path, daemon in
            let stalled = try LineSocket(path: path)  // subscribes, then does not read
            stalled.setReadTimeout(seconds: 30)
            stalled.write(
                Array(#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"load"}}"#.utf8) + [10])
            let reader = try LineSocket(path: path)
            reader.setReadTimeout(seconds: 30)
            _ = reader.roundTrip(#"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"load"}}"#)
            let count = 100_000
            let payload = String(repeating: "k", count: 1000)
            let received = LineCounter()
            async let readerDone = onThread { reader.countLines(upTo: count, progress: received) }
            let publisher = try LineSocket(path: path)
            publisher.setReadTimeout(seconds: 60)
            let line =
                Array(
                    #"{"jsonrpc":"2.0","id":1,"method":"publish","params":{"event_type":"load","data":"\#(payload)"}}"#
                        .utf8) + [10]
            let answers = LineCounter()
            async let publisherDone = onThread { publisher.countLines(upTo: count, progress: answers) }
            await onThread {
                for i in 0..<count {
                    while i - answers.value.load(ordering: .acquiring) > 256 { sched_yield() }
                    publisher.write(line)
                }
            }
            #expect(await publisherDone == count)
            #expect(await readerDone == count)
            // Bounded: what the stalled connection holds stays within its budget (+ one event).
            let queued = daemon.connections.live.map(\.outbox.queuedBytes).max() ?? 0
            #expect(queued <= budget + 2048)
            // Now the stalled subscriber drains: ack, what fit, one events_dropped notice, counts add up.
            var events = 0
            var dropped = 0
            var noticeFirst = 0
            var lastEventSeq = 0
            while events + dropped < count, let raw = stalled.readLine() {
                let message = try #require(try? JSONParser.parse(raw))
                if message["method"] == "event" {
                    events += 1
                    lastEventSeq = message["params"]?["event"]?["seq"]?.intValue ?? 0
                } else if message["method"] == "events_dropped" {
                    dropped += message["params"]?["count"]?.intValue ?? 0
                    noticeFirst = message["params"]?["first_seq"]?.intValue ?? 0
                    #expect(noticeFirst == lastEventSeq + 1)
                }
            }
            #expect(events > 0 && dropped > 0)
            #expect(events + dropped == count)
            let stats = try #require(publisher.roundTrip(#"{"jsonrpc":"2.0","id":2,"method":"get_stats"}"#))
            #expect(stats["result"]?["events_dropped"] == JSONValue(dropped))
        }
    }

    @Test func sinceSeqReplayIsGaplessUnderConcurrentPublishing() async throws {
        try await withDaemon(historyCapacity: 50_000) { path, _ in
            let publishers = (0..<3).map { p in
                Task.detached {
                    let client = try await TradewireClient.connect(socketPath: path)
                    for i in 0..<2000 { try await client.publish("tick", data: JSONValue(p * 10_000 + i)) }
                    await client.close()
                }
            }
            try await Task.sleep(for: .milliseconds(30))
            let subscriber = try LineSocket(path: path)
            subscriber.setReadTimeout(seconds: 30)
            subscriber.write(
                Array(
                    #"{"jsonrpc":"2.0","id":1,"method":"subscribe","params":{"event_type":"tick","since_seq":0}}"#.utf8)
                    + [10])
            for publisher in publishers { try await publisher.value }
            let ack = try #require(await onThread { subscriber.readLine().flatMap { try? JSONParser.parse($0) } })
            #expect(ack["result"]?["subscription"] != nil)
            let seqs: [Int] = await onThread {
                var seqs: [Int] = []
                while seqs.count < 6000, let raw = subscriber.readLine() {
                    if let seq = (try? JSONParser.parse(raw))?["params"]?["event"]?["seq"]?.intValue {
                        seqs.append(seq)
                    }
                }
                return seqs
            }
            #expect(seqs.count == 6000)
            #expect(
                seqs == Array(1...seqs.count),
                "first out of order at \(zip(seqs, 1...).first { $0 != $1 }.map { "\($0)" } ?? "-")")
        }
    }

    @Test func syncAndAsyncDaemonsDecideTheSame() async throws {
        var results: [JSONValue] = []
        for mode in OrchestratorMode.allCases {
            try await withDaemon(mode: mode) { path, _ in
                let client = try await TradewireClient.connect(socketPath: path)
                let symbols = JSONValue.array((0..<40).map { JSONValue("P\($0)") })
                results.append(try await client.call("run_pipeline", ["symbols": symbols]))
                let history = try await client.call("get_event_history", ["include_data": false])
                #expect(
                    history["events"]?.arrayValue?.compactMap { $0["event_type"]?.stringValue }
                        == PipelineEvent.allCases.map(\.rawValue))
                await client.close()
            }
        }
        func decisions(_ run: JSONValue) -> [String] {
            let approved = run["approved_signals"]?.arrayValue ?? []
            let executed = run["execution_results"]?.arrayValue ?? []
            return approved.map { "\($0["symbol"]!) \($0["action"]!) \($0["confidence"]!) \($0["qty"]!)" }
                + executed.map {
                    "\($0["signal"]?["symbol"] ?? nil) \($0["fill_price"] ?? nil) \($0["executed"] ?? nil)"
                }
                + (run["rejected_signals"]?.arrayValue ?? []).map { "\($0["symbol"]!) \($0["rejection_reason"]!)" }
        }
        #expect(decisions(results[0]) == decisions(results[1]))
        #expect(!(results[0]["execution_results"]?.arrayValue?.isEmpty ?? true))
    }
}
