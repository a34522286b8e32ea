import Foundation
import Testing
import TradewireJSON
import TradewireTesting

#if canImport(Glibc)
    import Glibc
#endif

/// Recovery (PROTOCOL §10, §14): after `kill -9` and a restart the daemon has the same
/// books, budget, numbering, loop and durable groups, and ends each interrupted iteration
/// with one `iteration_aborted`.
@Suite(.serialized) struct RecoveryProcessTests {
    static let arguments = ["--seed", "7", "--symbols", "AAPL,MSFT,GOOGL,SPY,QQQ,NVDA"]

    private func client(_ path: String) throws -> ScriptedMember {
        ScriptedMember(socket: try LineSocket(path: path)) { _ in .ignore }
    }

    /// The portfolio without the seq it was read at.
    private func book(_ client: ScriptedMember) async -> JSONValue? {
        guard var portfolio = await client.request("get_portfolio")?["result"]?.objectValue else { return nil }
        portfolio["as_of_seq"] = nil
        return .object(portfolio)
    }

    private func killed(_ daemon: DaemonProcess) async {
        kill(daemon.process.processIdentifier, SIGKILL)
        _ = await daemon.waitForExit()
    }

    @Test func theBooksNumberingLoopAndDurableGroupsSurviveKillMinusNine() async throws {
        let directory = temporaryDataDirectory("recover")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("rc")
        let arguments = ["--data-dir", directory] + Self.arguments

        // Before: trades, a dry run, a loop iteration, a durable group.
        let first = try DaemonProcess(socketPath: path, arguments: arguments)
        #expect(await first.waitUntilListening())
        let a = try client(path)
        var orderIDs: [String] = []
        for index in 0..<4 {
            let run = await a.request("run_pipeline", ["dry_run": JSONValue(index == 2)])?["result"]
            orderIDs += run?["execution_results"]?.arrayValue?.compactMap { $0["order_id"]?.stringValue } ?? []
        }
        #expect(!orderIDs.isEmpty, "the run traded (else this test proves little)")
        let member = try client(path)
        let group = await member.request(
            "register_stage", ["stage": "strategy", "name": "keeper", "durable": true, "timeout_ms": 250])
        #expect(group?["result"]?["durable"] == true)
        _ = await a.request("start_loop", ["interval_seconds": 3600])
        var loopIterations = 0
        for _ in 0..<200 where loopIterations == 0 {
            loopIterations = await a.request("get_status")?["result"]?["loop"]?["iterations"]?.intValue ?? 0
            try await Task.sleep(for: .milliseconds(50))
        }
        _ = await a.request("stop_loop")
        let before = await book(a)
        let statusBefore = await a.request("get_status")?["result"]
        let newestBefore = statusBefore?["journal"]?["newest_seq"]?.intValue ?? 0
        await killed(first)

        // After: the same books, the numbering continues, the loop stays stopped.
        let second = try DaemonProcess(socketPath: path, arguments: arguments)
        #expect(await second.waitUntilListening())
        let b = try client(path)
        #expect(await book(b) == before, "the book is rebuilt from the journal")
        let status = await b.request("get_status")?["result"]
        #expect(status?["loop"]?["running"] == false)
        #expect(status?["loop"]?["iterations"]?.intValue == loopIterations)
        #expect(status?["loop"]?["last_iteration"] == statusBefore?["loop"]?["last_iteration"])
        let groups = status?["stages"]?["strategy"]?.arrayValue ?? []
        #expect(groups.count == 1 && groups.first?["name"] == "keeper" && groups.first?["members"] == 0)
        #expect(groups.first?["durable"] == true && groups.first?["timeout_ms"] == 250)
        let stats = await b.request("get_stats")?["result"]
        #expect(stats?["total_events_published"]?.intValue == newestBefore, "carried over (§14)")
        let lastIteration = statusBefore?["loop"]?["last_iteration"]?["iteration"]?.intValue ?? 0
        let next = await b.request("run_pipeline")?["result"]
        #expect(next?["iteration"]?.intValue == lastIteration + 1, "iteration numbers continue")
        let orders = before?["orders"]?.intValue ?? 0
        let newIDs = next?["execution_results"]?.arrayValue?.compactMap { $0["order_id"]?.stringValue } ?? []
        if let firstNew = newIDs.first {
            #expect(firstNew == String(format: "paper-%06d", orders + 1), "order ids continue")
        }
        // A running loop resumes after the next kill.
        _ = await b.request("start_loop", ["interval_seconds": 3600])
        await killed(second)
        try await withDaemonProcess(path, arguments: arguments) { _ in
            let c = try client(path)
            let resumed = await c.request("get_status")?["result"]?["loop"]
            #expect(resumed?["running"] == true && resumed?["interval_seconds"] == 3600)
        }
    }

    @Test func anInterruptedIterationIsAbortedExactlyOnce() async throws {
        let directory = temporaryDataDirectory("abort")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("ra")
        let arguments = ["--data-dir", directory] + Self.arguments
        let daemon = try DaemonProcess(socketPath: path, arguments: arguments)
        #expect(await daemon.waitUntilListening())
        // A strategy member that never answers holds the iteration after its data stage.
        let member = try client(path)
        _ = await member.request("register_stage", ["stage": "strategy", "name": "silent", "timeout_ms": 60_000])
        let runner = try LineSocket(path: path)
        runner.write(Array(#"{"jsonrpc":"2.0","id":1,"method":"run_pipeline","params":{}}"#.utf8) + [0x0A])
        let watcher = try client(path)
        var started = false
        for _ in 0..<200 where !started {
            let history = await watcher.request("get_event_history", ["event_type": "data_ready"])?["result"]
            started = !(history?["events"]?.arrayValue ?? []).isEmpty
            try await Task.sleep(for: .milliseconds(25))
        }
        #expect(started)
        await killed(daemon)
        for _ in 0..<2 {
            try await withDaemonProcess(path, arguments: arguments) { _ in
                let c = try client(path)
                let history = await c.request("get_event_history", ["event_type": "iteration_aborted"])?["result"]
                let aborted = history?["events"]?.arrayValue ?? []
                #expect(aborted.count == 1, "one iteration_aborted, and none more at the next start")
                let data = aborted.first?["data"]
                #expect(data?["iteration"] == 1 && data?["last_stage"] == "data")
                #expect(data?["reason"] == "daemon stopped" && data?["iteration_id"]?.stringValue != nil)
                #expect(aborted.first?["metadata"]?["iteration_id"] == data?["iteration_id"])
                let next = await c.request("run_pipeline")?["result"]
                #expect((next?["iteration"]?.intValue ?? 0) >= 2, "nothing of it runs again; numbering goes on")
            }
        }
    }

    @Test func aReplayRerunsARecordedIterationAsADryRunAndListsWhatChanged() async throws {
        let directory = temporaryDataDirectory("replay")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = uniqueSocketPath("rp")
        let arguments = ["--data-dir", directory] + Self.arguments
        let cli = repositoryRoot.appendingPathComponent(".build/debug/tradewire").path
        var ids: [String] = []
        var before: JSONValue?
        try await withDaemonProcess(path, arguments: arguments) { _ in
            let c = try client(path)
            for _ in 0..<3 {
                let run = await c.request("run_pipeline")?["result"]
                ids.append(run?["iteration_id"]?.stringValue ?? "")
            }
            before = await book(c)
            #expect((before?["orders"]?.intValue ?? 0) > 0, "the run traded (else this test proves little)")
            for id in ids {
                let replay = await c.request("run_pipeline", ["replay": JSONValue(id)])?["result"]
                #expect(replay?["replay"]?["of"] == JSONValue(id))
                #expect(replay?["replay"]?["differences"] == [], "today's agents decide as then: \(id)")
                #expect(replay?["dry_run"] == true && replay?["iteration_id"] != JSONValue(id))
                #expect(replay?["execution_results"]?.arrayValue?.allSatisfy { $0["executed"] == false } == true)
            }
            #expect(await book(c) == before, "a replay changes nothing")
            let events = await c.request("get_event_history", ["event_type": "audit_ready"])?["result"]
            let replayed = (events?["events"]?.arrayValue ?? []).filter { $0["metadata"]?["replay_of"] != nil }
            #expect(replayed.count == 3 && replayed.allSatisfy { $0["metadata"]?["dry_run"] == true })
            let unknown = await c.request("run_pipeline", ["replay": "no-such-iteration"])
            #expect(unknown?["error"]?["code"] == -32012 && unknown?["error"]?["data"]?["type"] == "unknown_iteration")
            let mixed = await c.request("run_pipeline", ["replay": JSONValue(ids[0]), "symbols": ["AAPL"]])
            #expect(mixed?["error"]?["code"] == -32602)
            let (status, output) = try runCommand(cli, ["replay", ids[0], "--socket", path])
            #expect(status == 0 && output.contains("no differences"), "\(output)")
            let (_, table) = try runCommand(cli, ["portfolio", "--socket", path])
            #expect(table.contains("SYMBOL") && table.contains("UNREALIZED P&L") && table.contains("risk budget"))
        }
        // Today's risk rule is stricter: the replay shows the sizes that changed, and the
        // replays before left nothing in the book.
        try await withDaemonProcess(path, arguments: arguments, environment: ["RISK_MAX_PER_TRADE": "0.001"]) { _ in
            let c = try client(path)
            #expect(await book(c) == before, "replayed (dry-run) events are not folded into the book")
            let replay = await c.request("run_pipeline", ["replay": JSONValue(ids[0])])?["result"]
            let differences = replay?["replay"]?["differences"]?.arrayValue ?? []
            #expect(differences.contains { $0["stage"] == "risk" || $0["stage"] == "execution" }, "\(differences)")
            #expect(differences.allSatisfy { $0["recorded"] != $0["now"] && $0["symbol"]?.stringValue != nil })
            let (status, output) = try runCommand(cli, ["replay", ids[0], "--socket", path])
            #expect(status == 1 && output.contains("RECORDED"), "a difference exits 1: \(output)")
        }
        try await withDaemonProcess(path, arguments: ["--ephemeral"]) { _ in
            let c = try client(path)
            let answer = await c.request("run_pipeline", ["replay": JSONValue(ids[0])])
            #expect(answer?["error"]?["code"] == -32012, "nothing to replay without a journal")
        }
    }

    @Test func anExportImportRoundTripReproducesThePortfolio() async throws {
        let source = temporaryDataDirectory("export")
        let target = temporaryDataDirectory("import")
        let file = "/tmp/tw-export-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).jsonl"
        defer {
            for path in [source, target, file] { try? FileManager.default.removeItem(atPath: path) }
        }
        let cli = repositoryRoot.appendingPathComponent(".build/debug/tradewire").path
        let path = uniqueSocketPath("rx")
        var before: JSONValue?
        var status: JSONValue?
        try await withDaemonProcess(path, arguments: ["--data-dir", source] + Self.arguments) { _ in
            let c = try client(path)
            for _ in 0..<4 { _ = await c.request("run_pipeline") }
            before = await book(c)
            status = await c.request("get_status")?["result"]
            // Exported while the daemon runs: the journal is read without its lock.
            let (code, output) = try runCommand(
                cli, ["journal", "export", "--data-dir", source, "--output", file, "--no-progress"])
            #expect(code == 0, "\(output)")
        }
        #expect((before?["orders"]?.intValue ?? 0) > 0, "the run traded (else this test proves little)")
        let (code, output) = try runCommand(cli, ["journal", "import", file, "--data-dir", target, "--no-progress"])
        #expect(code == 0 && output.contains("imported"), "\(output)")
        try await withDaemonProcess(path, arguments: ["--data-dir", target] + Self.arguments) { _ in
            let c = try client(path)
            #expect(await book(c) == before, "the imported journal rebuilds the same book")
            let now = await c.request("get_status")?["result"]
            #expect(now?["journal"]?["newest_seq"] == status?["journal"]?["newest_seq"])
            #expect(now?["journal"]?["journal_id"] != status?["journal"]?["journal_id"], "a new journal")
            let next = await c.request("run_pipeline")?["result"]
            #expect(next?["iteration"] == 5, "iteration numbers continue after the 4 imported")
        }
    }
}
