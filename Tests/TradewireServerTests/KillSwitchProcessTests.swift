import Foundation
import Testing
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// The kill switch of the real daemon (PROTOCOL §12, §14): a halt survives a clean restart
/// and `kill -9`, and both triggers halt by themselves, from flags or the environment.
@Suite(.serialized) struct KillSwitchProcessTests {
    private func client(_ path: String) throws -> ScriptedMember {
        ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
    }

    private func tradingState(_ client: ScriptedMember) async -> JSONValue? {
        await client.request("get_status")?["result"]?["trading_state"]
    }

    private func killed(_ daemon: DaemonProcess) async {
        kill(daemon.process.processIdentifier, SIGKILL)
        _ = await daemon.waitForExit()
    }

    private func started(_ path: String, _ arguments: [String], environment: [String: String] = [:]) async throws
        -> DaemonProcess
    {
        let daemon = try DaemonProcess(socketPath: path, arguments: arguments, environment: environment)
        guard await daemon.waitUntilListening() else {
            await daemon.stop()
            throw DaemonError("daemon did not start: \(daemon.stderr)")
        }
        return daemon
    }

    private func changes(_ client: ScriptedMember) async -> [JSONValue] {
        let history = await client.request("get_event_history", ["event_type": "trading_state_changed"])
        return (history?["result"]?["events"]?.arrayValue ?? []).compactMap { $0["data"] }
    }

    @Test func aHaltSurvivesARestartAndKillMinusNine() async throws {
        let directory = temporaryDataDirectory("halt")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("kh")
        let arguments = ["--data-dir", directory, "--mode", "sync"]

        let first = try await started(path, arguments)
        let a = try client(path)
        let halted = await a.request("set_trading_state", ["state": "halted", "reason": "maintenance"])?["result"]
        #expect(await first.stop() == 0)

        let second = try await started(path, arguments)
        let b = try client(path)
        let restored = await tradingState(b)
        #expect(restored?["state"] == "halted" && restored?["reason"] == "maintenance")
        #expect(restored?["since"] == halted?["since"], "the same halt, not a new one")
        let run = await b.request("run_pipeline", ["strategy": "TrendFollowing"])?["result"]
        let orders = (run?["rejected_signals"]?.arrayValue ?? []).filter { $0["action"] != "HOLD" }
        #expect(!orders.isEmpty && orders.allSatisfy { $0["rejection_reason"] == "trading halted: maintenance" })
        let reducing = await b.request("set_trading_state", ["state": "reducing", "reason": "trim"])?["result"]
        await killed(second)

        let third = try await started(path, arguments)
        let c = try client(path)
        #expect(await tradingState(c) == ["state": "reducing", "since": reducing?["since"] ?? .null, "reason": "trim"])
        _ = await c.request("set_trading_state", ["state": "active", "reason": "all clear"])
        await killed(third)

        let fourth = try await started(path, arguments)
        let d = try client(path)
        let resumed = await tradingState(d)
        #expect(resumed?["state"] == "active" && resumed?["reason"] == "all clear")
        #expect(await changes(d).map { $0["state"] } == ["halted", "reducing", "active"], "every change journaled")
        await fourth.stop()
    }

    @Test func anImportedJournalKeepsTheHaltItsEventsRecord() async throws {
        // An import brings the events, not the state documents: the state comes from the
        // journal's trading_state_changed events then.
        let source = temporaryDataDirectory("ksrc")
        let target = temporaryDataDirectory("kdst")
        let file = "/tmp/tw-ks-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        defer { for path in [source, target, file] { try? FileManager.default.removeItem(atPath: path) } }
        let cli = repositoryRoot.appendingPathComponent(".build/debug/tradewire").path
        let path = uniqueSocketPath("ki")
        var halted: JSONValue?
        try await withDaemonProcess(path, arguments: ["--data-dir", source]) { _ in
            let c = try client(path)
            _ = await c.request("set_trading_state", ["state": "reducing", "reason": "first"])
            halted = await c.request("set_trading_state", ["state": "halted", "reason": "exported"])?["result"]
        }
        let (exported, exportOutput) = try runCommand(
            cli, ["journal", "export", "--data-dir", source, "--output", file, "--no-progress"])
        #expect(exported == 0, "\(exportOutput)")
        let (imported, importOutput) = try runCommand(
            cli, ["journal", "import", file, "--data-dir", target, "--no-progress"])
        #expect(imported == 0, "\(importOutput)")
        try await withDaemonProcess(path, arguments: ["--data-dir", target]) { _ in
            let c = try client(path)
            let state = await tradingState(c)
            #expect(state?["state"] == "halted" && state?["reason"] == "exported")
            #expect(state?["since"] == halted?["since"])
        }
    }

    @Test func aDrawdownHaltsAndItsPeakSurvivesARestart() async throws {
        let directory = temporaryDataDirectory("drawdown")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("kd")
        let arguments = ["--data-dir", directory, "--symbols", "AAPL", "--halt-on-drawdown", "5"]

        // Buy AAPL: the iteration's end sets the peak (about the starting equity).
        let first = try await started(path, arguments)
        let a = try client(path)
        let buy: JSONValue = [
            "id": "buy", "symbol": "AAPL", "action": "BUY", "strategy_name": "manual", "confidence": 1,
        ]
        let receipt = await a.request("publish", ["event_type": "validated_ready", "data": [buy]])?["result"]
        #expect(receipt?["executed"] == 1, "\(String(describing: receipt))")
        #expect(await tradingState(a)?["state"] == "active")
        #expect(await first.stop() == 0)

        // After a restart AAPL falls 90 %: measured against the journaled peak, that halts.
        let second = try await started(path, arguments)
        let b = try client(path)
        var bars: [JSONValue] = []
        for day in 1...30 {
            let date = "2026-01-\(day < 10 ? "0" : "")\(day)T00:00:00Z"
            bars.append([
                "timestamp": JSONValue(date), "open": 10, "high": 10.5, "low": 9.5, "close": 10, "volume": 1e6,
            ])
        }
        let crash: JSONValue = ["AAPL": ["symbol": "AAPL", "bars": .array(bars)]]
        let run = await b.request("run_pipeline", ["market_data": crash])
        #expect(run?["result"] != nil, "\(String(describing: run))")
        let state = await tradingState(b)
        #expect(state?["state"] == "halted")
        let reason = state?["reason"]?.stringValue ?? ""
        #expect(reason.hasPrefix("drawdown ") && reason.contains("% below peak "), "\(reason)")
        let last = await changes(b).last
        #expect(last?["by"] == "trigger" && last?["previous"] == "active" && last?["reason"] == state?["reason"])
        await second.stop()
    }

    @Test func errorsInARowHaltTheLoop() async throws {
        let csv = temporaryDataDirectory("csv")
        try FileManager.default.createDirectory(atPath: csv, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: csv) }
        var rows = ["Date,Open,High,Low,Close,Volume"]
        let start = Date(timeIntervalSince1970: 1_735_689_600)  // 2025-01-01
        for day in 0..<60 {
            let date = RFC3339.string(from: start.addingTimeInterval(Double(day) * 86_400)).prefix(10)
            let close = 100 + Double(day % 7)
            rows.append("\(date),\(close),\(close + 1),\(close - 1),\(close),1000000")
        }
        try rows.joined(separator: "\n").write(toFile: csv + "/GOOD.csv", atomically: true, encoding: .utf8)
        let path = uniqueSocketPath("ke")
        // MISSING has no file: every iteration reports it in `errors`.
        try await withDaemonProcess(
            path,
            arguments: ["--data-provider", "csv:\(csv)", "--symbols", "GOOD,MISSING", "--loop", "--interval", "0.1"],
            environment: ["HALT_ON_ERRORS": "3"]
        ) { _ in
            let c = try client(path)
            var state: JSONValue?
            for _ in 0..<400 where state?["state"] != "halted" {
                state = await tradingState(c)
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(state?["state"] == "halted")
            let reason = state?["reason"]?.stringValue ?? ""
            #expect(reason.hasPrefix("3 iterations in a row with errors (last: data MISSING: "), "\(reason)")
            let loop = await c.request("get_status")?["result"]?["loop"]
            #expect((loop?["iterations"]?.intValue ?? 0) >= 3)
            let announced = await changes(c)
            #expect(announced.count == 1 && announced.first?["by"] == "trigger", "one halt, however long it fails")
        }
    }

    @Test func triggerSettingsOutOfRangeAreUsageErrors() throws {
        let daemon = DaemonProcess.binary
        let socket = uniqueSocketPath("ku")
        for (flag, value) in [
            ("--halt-on-drawdown", "0"), ("--halt-on-drawdown", "100.01"), ("--halt-on-drawdown", "ten"),
            ("--halt-on-errors", "0"), ("--halt-on-errors", "1000001"), ("--halt-on-errors", "1.5"),
        ] {
            let (status, output) = try runCommand(daemon, ["--socket", socket, "--ephemeral", flag, value])
            #expect(status == 2 && output.contains(flag), "\(flag) \(value): \(output)")
        }
        var environment = ProcessInfo.processInfo.environment
        environment["HALT_ON_DRAWDOWN_PCT"] = "-3"
        let (status, output) = try runCommand(daemon, ["--socket", socket, "--ephemeral"], environment: environment)
        #expect(status == 2 && output.contains("HALT_ON_DRAWDOWN_PCT"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: socket))
    }
}
