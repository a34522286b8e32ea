import Foundation
import Testing
import TradewireJSON

#if canImport(Glibc)
    import Glibc
#endif

/// End-to-end: `tradewire serve-stage` and `tradewire stages` against a real `tradewired`
/// per test (PROTOCOL §9). The CLI under test is `$TRADEWIRE_CLI` when set (a binary built
/// with another `--scratch-path`), else `.build/debug/tradewire`.
@Suite(.serialized)
struct StageCLITests {
    static let dryRunGOOGL = #"{"symbols":["GOOGL"],"strategy":"TrendFollowing","dry_run":true}"#

    private func json(_ text: String) throws -> JSONValue {
        try JSONParser.parse(text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// One dry-run iteration of GOOGL with TrendFollowing (seed 42: the built-in risk agent
    /// approves a BUY of about 20 000 notional).
    private func runGOOGL(_ daemon: TestDaemon) async throws -> JSONValue {
        let result = try await daemon.cli(["call", "run_pipeline", Self.dryRunGOOGL, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try json(result.stdout)
    }

    private func stages(_ daemon: TestDaemon) async throws -> JSONValue {
        let result = try await daemon.cli(["stages", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        return try json(result.stdout)
    }

    @Test func jqVetoRejectsTheLargeBuy() async throws {
        try await withDaemon { daemon in
            // Without handlers: an approved BUY of GOOGL over 10 000 notional.
            let before = try await runGOOGL(daemon)
            let approved = try #require(before["approved_signals"]?.arrayValue)
            #expect(approved.count == 1)
            let buy = try #require(approved.first)
            #expect(buy["symbol"] == "GOOGL" && buy["action"] == "BUY" && buy["approved"] == true)
            let notional = (buy["qty"]?.doubleValue ?? 0) * (buy["price"]?.doubleValue ?? 0)
            #expect(notional > 10_000)
            #expect(before["handlers"] == [])

            let script = Binaries.repoRoot.appendingPathComponent("contrib/shell/jq-risk-veto.sh").path
            let veto = try Subprocess(
                URL(fileURLWithPath: "/usr/bin/env"),
                [
                    "TRADEWIRE=\(try CLIBinary.url().path)", "MAX_NOTIONAL=10000", "bash", script, "--socket",
                    daemon.socket,
                ])
            defer { veto.stopServing() }
            try await veto.waitForRegistration()
            #expect(veto.stderr.contains("registered risk/jq-veto as r-"))

            let after = try await runGOOGL(daemon)
            #expect(after["approved_signals"] == [])
            let rejected = try #require(after["rejected_signals"]?.arrayValue)
            #expect(rejected.map { $0["symbol"] } == ["GOOGL"])
            #expect(rejected.first?["approved"] == false)
            #expect(rejected.first?["rejection_reason"] == "notional over 10000")
            // Only the approval changed.
            #expect(rejected.first?["qty"] == buy["qty"])
            let handlers = try #require(after["handlers"]?.arrayValue)
            #expect(handlers.map { $0["outcome"] } == ["ok"])
            #expect(handlers.first?["name"] == "jq-veto")
            #expect(after["errors"] == [])

            let stopped = try await veto.stopServing(timeout: .seconds(10))
            #expect(stopped.status == 0, "\(stopped.stderr)")
        }
    }

    @Test func failingCommandFailsClosed() async throws {
        try await withDaemon { daemon in
            let member = try daemon.serveStage(
                ["risk", "--name", "failing"], command: ["sh", "-c", "cat >/dev/null; echo 'bad input' >&2; exit 3"])
            defer { member.stopServing() }
            try await member.waitForRegistration()

            let run = try await runGOOGL(daemon)
            let handlers = try #require(run["handlers"]?.arrayValue)
            #expect(handlers.map { $0["outcome"] } == ["error"])
            #expect(handlers.first?["message"]?.stringValue?.contains("command exited 3: bad input") == true)
            #expect(run["approved_signals"] == [])
            let rejected = try #require(run["rejected_signals"]?.arrayValue)
            #expect(rejected.map { $0["rejection_reason"] } == ["risk handler failing failed: error"])

            let stopped = try await member.stopServing(timeout: .seconds(10))
            #expect(stopped.status == 0)
            // The command's stderr passed through with the call id, then the error reply.
            #expect(stopped.stderr.contains("] bad input\n"))
            #expect(stopped.stderr.contains("error reply: command exited 3: bad input"))
        }
    }

    @Test func slowCommandTimesOutAndIsKilled() async throws {
        try await withDaemon { daemon in
            let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent(
                "twstage-\(UUID().uuidString).pid")
            defer { try? FileManager.default.removeItem(at: pidFile) }
            let member = try daemon.serveStage(
                ["risk", "--name", "slow", "--timeout", "300"],
                command: ["sh", "-c", "echo $$ > '\(pidFile.path)'; exec sleep 30"])
            defer { member.stopServing() }
            try await member.waitForRegistration()

            let run = try await runGOOGL(daemon)
            let handlers = try #require(run["handlers"]?.arrayValue)
            #expect(handlers.map { $0["outcome"] } == ["timeout"])
            let rejected = try #require(run["rejected_signals"]?.arrayValue)
            #expect(rejected.map { $0["rejection_reason"] } == ["risk handler slow failed: timeout"])

            let text = try String(contentsOf: pidFile, encoding: .utf8)
            let pid = try #require(pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)))
            // SIGTERM at the deadline (sleep dies of it); give the kill and the reaping a moment.
            let deadline = ContinuousClock.now + .seconds(5)
            while kill(pid, 0) == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let gone = kill(pid, 0) == -1 && errno == ESRCH
            #expect(gone, "the command \(pid) is still there")

            let stopped = try await member.stopServing(timeout: .seconds(10))
            #expect(stopped.status == 0)
            #expect(stopped.stderr.contains("command killed"))
        }
    }

    @Test func stagesShowsTheGroup() async throws {
        try await withDaemon { daemon in
            let empty = try await daemon.cli(["stages"])
            #expect(empty.status == 0)
            #expect(empty.lines == ["no stage groups"])

            let member = try daemon.serveStage(["risk", "--name", "watched"], command: ["jq", "-c", ".output"])
            defer { member.stopServing() }
            try await member.waitForRegistration()
            let run = try await runGOOGL(daemon)
            #expect(run["handlers"]?.arrayValue?.map { $0["outcome"] } == ["ok"])

            let groups = try #require(try await stages(daemon)["risk"]?.arrayValue)
            #expect(groups.count == 1)
            #expect(groups.first?["name"] == "watched")
            #expect(groups.first?["members"] == 1)
            #expect((groups.first?["calls"]?.intValue ?? 0) >= 1)

            let table = try await daemon.cli(["stages"])
            #expect(table.status == 0)
            #expect(
                table.lines.first?.split(separator: " ").map(String.init) == [
                    "STAGE", "NAME", "MODE", "ON_FAILURE", "DURABLE", "MEMBERS", "IN_FLIGHT", "CALLS", "FAILURES",
                    "TIMEOUTS", "LATE", "P50_MS", "P99_MS",
                ])
            let row = try #require(table.lines.dropFirst().first).split(separator: " ").map(String.init)
            #expect(Array(row.prefix(6)) == ["risk", "watched", "after", "fail_closed", "no", "1"])
            #expect((Int(row[7]) ?? 0) >= 1)
        }
    }

    @Test func sigtermUnregistersAndExitsZero() async throws {
        try await withDaemon { daemon in
            let member = try daemon.serveStage(["quant", "--name", "leaving"], command: ["jq", "-c", ".output"])
            defer { member.stopServing() }
            try await member.waitForRegistration()
            let registered = try await stages(daemon)
            #expect(registered["quant"]?.arrayValue?.map { $0["name"] } == ["leaving"])

            let stopped = try await member.stopServing(timeout: .seconds(10))
            #expect(stopped.status == 0, "\(stopped.stderr)")
            #expect(try await stages(daemon)["quant"] == [])
        }
    }
}

/// The `tradewire` binary under test.
enum CLIBinary {
    static func url() throws -> URL {
        if let path = ProcessInfo.processInfo.environment["TRADEWIRE_CLI"], !path.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: path) else {
                throw SubprocessError(description: "TRADEWIRE_CLI=\(path) is not an executable file")
            }
            return URL(fileURLWithPath: path)
        }
        return try Binaries.url("tradewire")
    }
}

extension TestDaemon {
    /// Runs the CLI under test with `--socket SOCKET` first (so it stays before any `--`).
    fileprivate func cli(_ arguments: [String]) async throws -> ProcessResult {
        try await Subprocess(try CLIBinary.url(), ["--socket", socket] + arguments).finish()
    }

    /// Starts `tradewire serve-stage ARGS -- COMMAND`.
    fileprivate func serveStage(_ arguments: [String], command: [String]) throws -> Subprocess {
        try Subprocess(try CLIBinary.url(), ["--socket", socket, "serve-stage"] + arguments + ["--"] + command)
    }
}

extension Subprocess {
    /// Waits for serve-stage's `registered STAGE/NAME as r-N (members M)` line.
    fileprivate func waitForRegistration() async throws { try await waitForStderr("registered ") }

    /// SIGTERM and wait for the exit (SIGKILL after `timeout`).
    @discardableResult
    fileprivate func stopServing(timeout: Duration) async throws -> ProcessResult {
        try await terminate(timeout: timeout)
    }

    /// The cleanup for `defer`: SIGTERM, up to 5 s, then SIGKILL.
    fileprivate func stopServing() { terminateNow() }
}
