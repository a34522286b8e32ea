import Foundation
import Testing
import TradewireJSON

/// End-to-end: the built `tradewire` against a real `tradewired` per test.
@Suite(.serialized)
struct CLITests {
    private func json(_ text: String) throws -> JSONValue {
        try JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Polls `stats --json` until the daemon counts `count` client subscriptions.
    private func waitForSubscribers(_ daemon: TestDaemon, _ count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let stats = try await daemon.tradewire(["stats", "--json"])
            if try json(stats.stdout)["total_subscribers"]?.intValue ?? 0 >= count { return }
            guard ContinuousClock.now < deadline else { throw SubprocessError(description: "no \(count) subscribers") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func pingPrintsPong() async throws {
        try await withDaemon { daemon in
            let result = try await daemon.tradewire(["ping"])
            #expect(result.status == 0)
            #expect(result.stdout.hasPrefix("pong ("))
            #expect(result.stdout.contains(" ms)"))
        }
    }

    @Test func pingJSONIsTheResult() async throws {
        try await withDaemon { daemon in
            let result = try await daemon.tradewire(["--json", "ping"])
            #expect(result.status == 0)
            #expect(try json(result.stdout) == ["pong": true])
            #expect(result.lines == [#"{"pong":true}"#])
        }
    }

    @Test func publishThenHistory() async throws {
        try await withDaemon { daemon in
            let published = try await daemon.tradewire([
                "publish", "cli.test", #"{"n":42,"s":"x"}"#, "--meta", "src=cli", "--meta", "k=7",
            ])
            #expect(published.status == 0, "\(published.stderr)")
            #expect(published.stdout.hasPrefix("published seq 1 (cli.test, 0 subscribers)"))

            let fromStdin = try await daemon.tradewire(["publish", "cli.test", "-"], stdin: #"[1, 2]"#)
            #expect(fromStdin.status == 0, "\(fromStdin.stderr)")

            let history = try await daemon.tradewire(["history", "--json", "--type", "cli.test"])
            #expect(history.status == 0)
            let events = try #require(try json(history.stdout)["events"]?.arrayValue)
            #expect(events.count == 2)
            #expect(events.first?["data"] == ["n": 42, "s": "x"])
            #expect(events.first?["metadata"] == ["src": "cli", "k": 7])
            #expect(events.last?["data"] == [1, 2])

            let table = try await daemon.tradewire(["history"])
            #expect(table.lines.first?.contains("SEQ") == true)
            #expect(table.lines.first?.contains("DATA") == true)
            #expect(table.stdout.contains(#"{"n":42,"s":"x"}"#))
        }
    }

    @Test func subscribeReceivesPublishedEvents() async throws {
        try await withDaemon { daemon in
            let subscriber = try daemon.start(["subscribe", "--json", "--count", "2", "cli.sub"])
            try await waitForSubscribers(daemon, 1)
            #expect(try await daemon.tradewire(["publish", "cli.other", "0"]).status == 0)
            #expect(try await daemon.tradewire(["publish", "cli.sub", #"{"n":1}"#]).status == 0)
            #expect(try await daemon.tradewire(["publish", "cli.sub", #"{"n":2}"#]).status == 0)

            let result = try await subscriber.finish(timeout: .seconds(10))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.lines.count == 2)
            let events = try result.lines.map { try json($0) }
            #expect(events.map { $0["event_type"] } == ["cli.sub", "cli.sub"])
            #expect(events.map { $0["data"] } == [["n": 1], ["n": 2]])
            #expect(events.allSatisfy { $0["seq"]?.intValue != nil && $0["timestamp"] != nil && $0["metadata"] != nil })
        }
    }

    @Test func overlappingPatternsPrintEachEventOnce() async throws {
        try await withDaemon { daemon in
            let subscriber = try daemon.start(["subscribe", "--count", "2", "cli.dup", "cli.*"])
            try await waitForSubscribers(daemon, 2)
            #expect(try await daemon.tradewire(["publish", "cli.dup", #"{"n":1}"#]).status == 0)
            #expect(try await daemon.tradewire(["publish", "cli.dup", #"{"n":2}"#]).status == 0)
            let result = try await subscriber.finish(timeout: .seconds(10))
            #expect(result.status == 0, "\(result.stderr)")
            // Human lines: SEQ TIME TYPE DATA.
            #expect(result.lines.count == 2)
            #expect(result.lines.first?.hasPrefix("1 ") == true)
            #expect(result.lines.first?.hasSuffix(#"cli.dup {"n":1}"#) == true)
            #expect(result.lines.last?.hasPrefix("2 ") == true)
        }
    }

    @Test func shutdownEndsSubscribeCleanly() async throws {
        try await withDaemon { daemon in
            let subscriber = try daemon.start(["subscribe", "--json", "*"])
            try await waitForSubscribers(daemon, 1)
            let shutdown = try await daemon.tradewire(["shutdown"])
            #expect(shutdown.status == 0)
            #expect(shutdown.stdout == "daemon is shutting down\n")
            let result = try await subscriber.finish(timeout: .seconds(15))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("shutting down"))
        }
    }

    @Test func callPassesParams() async throws {
        try await withDaemon { daemon in
            _ = try await daemon.tradewire(["publish", "cli.a", "1"])
            _ = try await daemon.tradewire(["publish", "cli.b", "2"])
            let result = try await daemon.tradewire(["call", "get_event_history", #"{"event_type":"cli.b"}"#, "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let events = try #require(try json(result.stdout)["events"]?.arrayValue)
            #expect(events.map { $0["event_type"] } == ["cli.b"])

            let pretty = try await daemon.tradewire(["call", "ping"])
            #expect(pretty.stdout == "{\n  \"pong\": true\n}\n")

            let notObject = try await daemon.tradewire(["call", "ping", "[1]"])
            #expect(notObject.status == 2)
        }
    }

    @Test func runHasEveryKey() async throws {
        try await withDaemon { daemon in
            let result = try await daemon.tradewire(["run", "AAPL", "MSFT", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.lines.count == 1)
            let run = try #require(try json(result.stdout).objectValue)
            let keys = [
                "iteration", "iteration_id", "symbols", "duration_seconds", "market_data", "signals",
                "validated_signals", "approved_signals", "rejected_signals", "execution_results",
                "audit_report", "errors",
            ]
            for key in keys { #expect(run[key] != nil, "missing \(key)") }
            #expect(run["symbols"] == ["AAPL", "MSFT"])

            let human = try await daemon.tradewire(["run", "AAPL", "--dry-run"])
            #expect(human.status == 0)
            #expect(human.stdout.contains("SYMBOL"))
            #expect(human.stdout.contains("APPROVED"))
            #expect(human.stdout.contains("audit: "))
        }
    }

    @Test func invalidSymbolIsAnRPCError() async throws {
        try await withDaemon { daemon in
            let result = try await daemon.tradewire(["run", "bad sym!"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("invalid_params"))
            #expect(result.stderr.contains("-32602"))
            #expect(result.stderr.contains("at /symbols/0:"))
        }
    }

    @Test func clearMessagesForCommonMistakes() async throws {
        try await withDaemon { daemon in
            let negative = try await daemon.tradewire(["run", "--timeout", "-5"])
            #expect(negative.status == 2)
            #expect(negative.stderr.contains("--timeout must be positive"))

            let symbol = try await daemon.tradewire(["run", "b@d"])
            #expect(symbol.status == 1)
            // The reason is said once, not "invalid symbol: invalid symbol …".
            #expect(symbol.stderr.components(separatedBy: "invalid symbol").count == 2)
        }
        let missing = try await Subprocess(
            try Binaries.url("tradewire"), ["status", "--socket", "/nonexistent-tradewire-dir/tw.sock"]
        ).finish()
        #expect(missing.status == 3)
        #expect(missing.stderr.contains("socket directory /nonexistent-tradewire-dir does not exist"))
    }

    @Test func unknownMethodExits1() async throws {
        try await withDaemon { daemon in
            let result = try await daemon.tradewire(["call", "nope"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("-32601"))
            #expect(result.stderr.contains("method_not_found"))
        }
    }

    @Test func usageErrorsExit2() async throws {
        try await withDaemon { daemon in
            let badFlag = try await daemon.tradewire(["history", "--limit", "abc"])
            #expect(badFlag.status == 2)
            #expect(badFlag.stderr.contains("--limit"))

            let badJSON = try await daemon.tradewire(["publish", "T", "{bad"])
            #expect(badJSON.status == 2)
            #expect(badJSON.stderr.contains("not valid JSON"))

            let badStdin = try await daemon.tradewire(["publish", "T", "-"], stdin: "{bad")
            #expect(badStdin.status == 2)

            let badStrategy = try await daemon.tradewire(["run", "--strategy", "Nope"])
            #expect(badStrategy.status == 2)

            let help = try await daemon.tradewire(["publish", "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Examples:"))
        }
    }

    @Test func missingSocketExits3() async throws {
        let path = "/tmp/twcli-\(getpid())-missing.sock"
        let result = try await Subprocess(try Binaries.url("tradewire"), ["ping", "--socket", path]).finish()
        #expect(result.status == 3)
        #expect(result.stderr.contains(path))
        #expect(result.stderr.contains("tradewired --socket"))
    }

    @Test func statsShowsTables() async throws {
        try await withDaemon { daemon in
            _ = try await daemon.tradewire(["run", "AAPL"])
            let result = try await daemon.tradewire(["stats"])
            #expect(result.status == 0)
            for header in ["COUNTER", "EVENT TYPE", "SUBSCRIBERS", "PUBLISHED TYPE", "STAGE", "P50 MS", "P99 MS"] {
                #expect(result.stdout.contains(header), "missing \(header)")
            }
        }
    }

    @Test func discoverListsEveryMethod() async throws {
        try await withDaemon { daemon in
            let result = try await daemon.tradewire(["discover", "--json"])
            #expect(result.status == 0)
            let methods = try #require(try json(result.stdout)["methods"]?.arrayValue)
            #expect(methods.count == 23)
            #expect(methods.contains { $0["name"] == "get_dead_letters" })
            #expect(methods.contains { $0["name"] == "set_trading_state" })
            #expect(methods.contains { $0["name"] == "get_portfolio" })
            #expect(methods.contains { $0["name"] == "register_stage" })
            #expect(methods.contains { $0["name"] == "rpc.discover" })
        }
    }

    @Test func loopStartStatusStop() async throws {
        try await withDaemon { daemon in
            let start = try await daemon.tradewire(["loop", "start", "--interval", "0.2"])
            #expect(start.status == 0, "\(start.stderr)")
            #expect(start.stdout.contains("loop running every 0.2 s"))

            let status = try await daemon.tradewire(["status", "--json"])
            #expect(try json(status.stdout)["loop"]?["running"] == true)

            let stop = try await daemon.tradewire(["loop", "stop"])
            #expect(stop.status == 0)
            #expect(stop.stdout.hasPrefix("loop stopped after "))

            let after = try await daemon.tradewire(["status", "--json"])
            #expect(try json(after.stdout)["loop"]?["running"] == false)
        }
    }

    @Test func completionScriptIsGenerated() async throws {
        let result = try await Subprocess(
            try Binaries.url("tradewire"), ["--generate-completion-script", "bash"]
        ).finish()
        #expect(result.status == 0)
        #expect(result.stdout.contains("tradewire"))
    }
}
