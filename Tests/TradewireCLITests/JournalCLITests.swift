import Foundation
import Logging
import Synchronization
import Testing
import TradewireBus
import TradewireJSON
import TradewireJournal

#if canImport(Glibc)
    import Glibc
#endif

/// End-to-end: `tradewire journal export|import` on real SQLite journals, with and without a
/// real `tradewired` on the data dir.
@Suite(.serialized)
struct JournalCLITests {
    private func json(_ text: some StringProtocol) throws -> JSONValue {
        try JSONParser.parse(String(text).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Events of every data type, metadata and a pipeline iteration, published through a daemon.
    private func publishSamples(_ daemon: JournalDaemon) async throws -> Int {
        let samples: [(String, String)] = [
            ("cli.object", #"{"a":{"b":[1,"x",null]},"n":-1.5e-7}"#), ("cli.array", "[1,2,3]"),
            ("cli.string", #""Zoë ✓ 日本 \"q\"""#), ("cli.number", "42.50"), ("cli.bool", "true"),
            ("cli.null", "null"),
        ]
        for (type, data) in samples {
            let published = try await daemon.tradewire(["publish", type, data, "--meta", "src=test", "--meta", "k=7"])
            #expect(published.status == 0, "\(published.stderr)")
        }
        let run = try await daemon.tradewire(["run", "AAPL", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        return try await daemon.history().count
    }

    @Test func exportWhileTheDaemonRunsIsTheHistory() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        try await JournalDaemon.with(dataDir: directory.child("a")) { daemon in
            let count = try await publishSamples(daemon)
            #expect(count >= 10)
            let history = try await daemon.history()

            let toStdout = try await runCLI(["journal", "export", "--data-dir", directory.child("a")])
            #expect(toStdout.status == 0, "\(toStdout.stderr)")
            #expect(toStdout.lines.count == count)
            #expect(try toStdout.lines.map { try json($0) } == history)
            #expect(toStdout.stderr == "exported \(count) events (seq 1…\(count)) to stdout\n")
            // Each line is the compact record, keys in the history's order.
            #expect(toStdout.lines.first?.hasPrefix(#"{"seq":1,"event_type":"cli.object","timestamp":""#) == true)
            #expect(
                toStdout.lines.first?.hasSuffix(
                    #""metadata":{"src":"test","k":7},"subscriber_count":0,"data_type":"object"}"#) == true)

            let file = directory.child("out.jsonl")
            let toFile = try await runCLI(["journal", "export", "--data-dir", directory.child("a"), "--output", file])
            #expect(toFile.status == 0, "\(toFile.stderr)")
            #expect(toFile.stderr == "exported \(count) events (seq 1…\(count)) to \(file)\n")
            #expect(try String(contentsOfFile: file, encoding: .utf8) == toStdout.stdout)
            #expect(permissions(file) == 0o600)
            // No temporary file is left beside it.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted() == ["a", "out.jsonl"])

            // The daemon was not disturbed: it still publishes, and the next export sees it.
            let next = try await daemon.tradewire(["publish", "cli.after", "1"])
            #expect(next.stdout.hasPrefix("published seq \(count + 1) "))
            let since = try await runCLI([
                "journal", "export", "--data-dir", directory.child("a"), "--since", "\(count)",
            ])
            #expect(since.lines.count == 1)
            #expect(try json(since.lines[0])["event_type"] == "cli.after")
        }
    }

    @Test func exportFiltersBySeqAndType() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        // No daemon runs on this one.
        try writeJournal(directory.child("a"), count: 30) { $0 % 3 == 0 ? "fizz.tick" : "plain.tick" }
        let data = directory.child("a")

        let since = try await runCLI(["journal", "export", "--data-dir", data, "--since", "25"])
        #expect(since.status == 0, "\(since.stderr)")
        #expect(try since.lines.map { try json($0)["seq"] } == [26, 27, 28, 29, 30])
        #expect(since.stderr == "exported 5 events (seq 26…30) to stdout\n")

        let typed = try await runCLI(["journal", "export", "--data-dir", data, "--type", "fizz.*", "--since", "10"])
        #expect(typed.status == 0, "\(typed.stderr)")
        #expect(try typed.lines.map { try json($0)["seq"] } == [12, 15, 18, 21, 24, 27, 30])
        #expect(try typed.lines.allSatisfy { try json($0)["event_type"] == "fizz.tick" })

        let none = try await runCLI([
            "journal", "export", "--data-dir", data, "--since", "30", "-o", directory.child("e"),
        ])
        #expect(none.status == 0)
        #expect(none.stderr == "exported 0 events to \(directory.child("e"))\n")
        #expect(try String(contentsOfFile: directory.child("e"), encoding: .utf8) == "")

        let missing = try await runCLI(["journal", "export", "--data-dir", directory.child("nope")])
        #expect(missing.status == 2)
        #expect(missing.stderr == "tradewire: data dir \(directory.child("nope")) does not exist\n")
        let empty = directory.child("empty")
        mkdir(empty, 0o700)
        let noJournal = try await runCLI(["journal", "export", "--data-dir", empty])
        #expect(noJournal.status == 2)
        #expect(noJournal.stderr.contains("holds no journal"))
        let badType = try await runCLI(["journal", "export", "--data-dir", data, "--type", "bad type"])
        #expect(badType.status == 2)
    }

    @Test func importedJournalServesTheSameHistoryAndContinuesTheSeq() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        let exported = directory.child("export.jsonl")
        var count = 0
        try await JournalDaemon.with(dataDir: directory.child("a")) { daemon in
            count = try await publishSamples(daemon)
            let export = try await runCLI(["journal", "export", "--data-dir", directory.child("a"), "-o", exported])
            #expect(export.status == 0, "\(export.stderr)")
        }
        let original = try String(contentsOfFile: exported, encoding: .utf8)

        let imported = try await runCLI(["journal", "import", exported, "--data-dir", directory.child("b")])
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr == "imported \(count) events (seq 1…\(count)) into \(directory.child("b"))\n")
        // Exported again: the same bytes.
        let again = try await runCLI(["journal", "export", "--data-dir", directory.child("b")])
        #expect(again.stdout == original)

        try await JournalDaemon.with(dataDir: directory.child("b")) { daemon in
            let history = try await daemon.history()
            let lines = original.split(separator: "\n")
            #expect(history == (try lines.map { try json($0) }))
            #expect(history.map { JSONWriter.string($0) } == lines.map(String.init))
            let next = try await daemon.tradewire(["publish", "cli.next", #"{"n":1}"#])
            #expect(next.status == 0, "\(next.stderr)")
            #expect(next.stdout.hasPrefix("published seq \(count + 1) "))
        }
        let after = try await runCLI(["journal", "export", "--data-dir", directory.child("b")])
        #expect(after.lines.count == count + 1)
        #expect(after.lines.prefix(count).joined(separator: "\n") + "\n" == original)

        // From stdin, too.
        let piped = try await runCLI(["journal", "import", "-", "--data-dir", directory.child("c")], stdin: original)
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(try await runCLI(["journal", "export", "--data-dir", directory.child("c")]).stdout == original)
    }

    @Test func importRefusesAJournalThatHoldsEvents() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        try writeJournal(directory.child("a"), count: 3)
        let file = directory.child("in.jsonl")
        try exportLines(count: 5).write(toFile: file, atomically: false, encoding: .utf8)
        let result = try await runCLI(["journal", "import", file, "--data-dir", directory.child("a")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("already holds 3 events (seq 1…3)"))
        #expect(result.stderr.contains("give a new --data-dir"))
        let export = try await runCLI(["journal", "export", "--data-dir", directory.child("a")])
        #expect(export.lines.count == 3, "the journal is untouched")
    }

    @Test func importWhileADaemonHoldsTheDataDirExits2() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        let file = directory.child("in.jsonl")
        try exportLines(count: 5).write(toFile: file, atomically: false, encoding: .utf8)
        try await JournalDaemon.with(dataDir: directory.child("a")) { daemon in
            let result = try await runCLI(["journal", "import", file, "--data-dir", directory.child("a")])
            #expect(result.status == 2)
            #expect(result.stderr.contains("is in use by another tradewired (pid "))
            #expect(try await daemon.history().isEmpty)
        }
    }

    @Test func malformedInputNamesTheLineAndLeavesNoJournal() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        let good =
            #"{"seq":2,"event_type":"x","timestamp":"2025-11-30T10:00:00.000001Z","data":1,"#
            + #""metadata":{},"subscriber_count":0,"data_type":"number"}"#
        let cases: [(line: String, message: String)] = [
            ("{bad", "line 2: not valid JSON: "),
            ("[1,2]", "line 2: a history record is a JSON object, got array"),
            (good.replacingOccurrences(of: #""metadata":{},"#, with: ""), #"line 2: missing field "metadata""#),
            (good.replacingOccurrences(of: #""seq":2"#, with: #""seq":"2""#), #"line 2: "seq" must be an integer"#),
            (good.replacingOccurrences(of: #""x""#, with: #""bad type!""#), #"line 2: bad "event_type" "bad type!""#),
            (
                good.replacingOccurrences(of: "2025-11-30T10:00:00.000001Z", with: "yesterday"),
                #"line 2: "timestamp" must be an RFC 3339 time"#
            ),
            (
                good.replacingOccurrences(of: #""data":1"#, with: #""data":[1]"#),
                #"line 2: "data_type" is "number" but the data is an array"#
            ),
            (
                good.replacingOccurrences(of: #""data":1,"#, with: #""data":1,"extra":0,"#),
                #"line 2: unknown field "extra""#
            ),
            (
                good.replacingOccurrences(of: #""metadata":{}"#, with: #""metadata":[]"#),
                #"line 2: "metadata" must be an object, got []"#
            ),
        ]
        for (index, bad) in cases.enumerated() {
            let data = directory.child("d\(index)")
            let file = directory.child("in\(index).jsonl")
            try (exportLines(count: 1) + bad.line + "\n").write(toFile: file, atomically: false, encoding: .utf8)
            let result = try await runCLI(["journal", "import", file, "--data-dir", data])
            #expect(result.status == 1, "\(bad.line)")
            #expect(result.stderr.hasPrefix("tradewire: \(file) \(bad.message)"), "\(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: data + "/tradewire.db"), "no journal left: \(bad.line)")
        }

        // After whole batches were stored: the partly filled journal is removed.
        let data = directory.child("late")
        let file = directory.child("late.jsonl")
        try (exportLines(count: 2500) + "{\"seq\":2501}\n").write(toFile: file, atomically: false, encoding: .utf8)
        let result = try await runCLI(["journal", "import", file, "--data-dir", data])
        #expect(result.status == 1)
        #expect(result.stderr.contains("line 2501: missing field"))
        #expect(result.stderr.contains("nothing was imported"))
        #expect(!FileManager.default.fileExists(atPath: data + "/tradewire.db"))
        let export = try await runCLI(["journal", "export", "--data-dir", data])
        #expect(export.status == 2)
        #expect(export.stderr.contains("holds no journal"))
        // The data dir is free and empty: the fixed input imports.
        try exportLines(count: 2500).write(toFile: file, atomically: false, encoding: .utf8)
        #expect(try await runCLI(["journal", "import", file, "--data-dir", data]).status == 0)

        let tooLong = directory.child("long.jsonl")
        #expect(FileManager.default.createFile(atPath: tooLong, contents: Data(repeating: 0x20, count: 66 * 1_048_576)))
        let long = try await runCLI(["journal", "import", tooLong, "--data-dir", directory.child("long")])
        #expect(long.status == 1)
        #expect(long.stderr.contains("line 1 is longer than 65 MiB"))
    }

    @Test func gapsAndDisorderAreRefused() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        try writeJournal(directory.child("a"), count: 20) { $0 % 2 == 0 ? "even.tick" : "odd.tick" }
        let file = directory.child("typed.jsonl")
        let typed = try await runCLI([
            "journal", "export", "--data-dir", directory.child("a"), "--type", "even.*", "-o", file,
        ])
        #expect(typed.status == 0)
        let result = try await runCLI(["journal", "import", file, "--data-dir", directory.child("b")])
        #expect(result.status == 1)
        #expect(result.stderr.contains("line 2: seq 4 follows seq 2 of line 1"))
        #expect(result.stderr.contains("needs a full export"))
        #expect(!FileManager.default.fileExists(atPath: directory.child("b") + "/tradewire.db"))

        let lines = exportLines(count: 3).split(separator: "\n")
        try ([lines[0], lines[1], lines[1]].joined(separator: "\n") + "\n").write(
            toFile: file, atomically: false, encoding: .utf8)
        let disorder = try await runCLI(["journal", "import", file, "--data-dir", directory.child("c")])
        #expect(disorder.status == 1)
        #expect(disorder.stderr.contains("line 3: seq 2 is not above seq 2 of line 2"))
    }

    @Test func progressOnStderrWhenForced() async throws {
        let directory = TestDirectory()
        defer { directory.remove() }
        let events = 200_000
        try writeJournal(directory.child("a"), count: events)
        let file = directory.child("all.jsonl")

        let export = try await runCLI(
            ["journal", "export", "--data-dir", directory.child("a"), "-o", file, "--progress"], timeout: .seconds(300))
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stderr.hasSuffix("exported \(events) events (seq 1…\(events)) to \(file)\n"))
        let exportProgress = export.stderr.split(separator: "\n").dropLast().joined()
        #expect(exportProgress.contains("\rexporting  ["), "\(export.stderr)")
        #expect(exportProgress.contains("100%  \(events)/\(events) events"), "\(export.stderr)")

        let imported = try await runCLI(
            ["journal", "import", file, "--data-dir", directory.child("b"), "--progress"], timeout: .seconds(300))
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.hasSuffix("imported \(events) events (seq 1…\(events)) into \(directory.child("b"))\n"))
        #expect(imported.stderr.contains("\rimporting  ["), "\(imported.stderr)")
        #expect(imported.stderr.contains("%"))
        #expect(imported.stderr.contains("100%"), "the final state")
        #expect(imported.stderr.contains("MiB/s  in "), "the final state")
        #expect(imported.stderr.contains("  \(events) events"), "the final count")

        // Not a terminal, not forced: the summary line only.
        let quiet = try await runCLI(
            ["journal", "export", "--data-dir", directory.child("b"), "-o", directory.child("again.jsonl")],
            timeout: .seconds(300))
        #expect(quiet.stderr == "exported \(events) events (seq 1…\(events)) to \(directory.child("again.jsonl"))\n")
        #expect(FileManager.default.contentsEqual(atPath: file, andPath: directory.child("again.jsonl")))
    }

    @Test func helpHasExamples() async throws {
        for command in [["journal"], ["journal", "export"], ["journal", "import"]] {
            let help = try await runCLI(command + ["--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Examples:"), "\(command)")
            #expect(help.stdout.contains("tradewire journal"), "\(command)")
        }
    }
}

// MARK: - Helpers

/// The binaries built beside this test bundle (`swift build --scratch-path X` puts them all in
/// `X/debug`), so the tests run what the same build produced.
private enum BuiltBinaries {
    static let directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        .deletingLastPathComponent()

    static func url(_ name: String) throws -> URL {
        let url = directory.appendingPathComponent(name)
        guard FileManager.default.isExecutableFile(atPath: url.path) else {
            throw SubprocessError(
                description:
                    "\(url.path) is missing: build it first with `swift build --scratch-path <the same> --product \(name)`"
            )
        }
        return url
    }
}

/// Runs the CLI to completion.
private func runCLI(
    _ arguments: [String], stdin: String? = nil, timeout: Duration = .seconds(60)
) async throws -> ProcessResult {
    try await Subprocess(try BuiltBinaries.url("tradewire"), arguments, stdin: stdin).finish(timeout: timeout)
}

/// A fresh directory under /tmp, removed with everything in it.
private struct TestDirectory {
    private static let counter = Atomic<Int>(0)
    let path: String

    init() {
        path = "/tmp/twjc-\(getpid())-\(Self.counter.add(1, ordering: .relaxed).newValue)"
        try? FileManager.default.removeItem(atPath: path)
        mkdir(path, 0o700)
    }

    func child(_ name: String) -> String { path + "/" + name }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A `tradewired` on its own data dir and short socket path; stopped with SIGTERM.
private final class JournalDaemon: @unchecked Sendable {
    private static let counter = Atomic<Int>(0)
    let socket: String
    private let subprocess: Subprocess

    private init(dataDir: String) async throws {
        socket = "/tmp/twjc-\(getpid())-\(Self.counter.add(1, ordering: .relaxed).newValue).sock"
        subprocess = try Subprocess(
            try BuiltBinaries.url("tradewired"),
            ["--socket", socket, "--data-dir", dataDir, "--log-level", "warning"])
        let deadline = ContinuousClock.now + .seconds(15)
        while !subprocess.stderr.contains("listening on") {
            guard subprocess.process.isRunning, ContinuousClock.now < deadline else {
                stop()
                throw SubprocessError(description: "tradewired did not start on \(socket): \(subprocess.stderr)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Runs `body` with a daemon on `dataDir`, always stopped afterwards (and waited for, so
    /// the data dir is free again).
    static func with(dataDir: String, _ body: (JournalDaemon) async throws -> Void) async throws {
        let daemon = try await JournalDaemon(dataDir: dataDir)
        defer { daemon.stop() }
        try await body(daemon)
    }

    func stop() {
        if subprocess.process.isRunning { subprocess.process.terminate() }
        subprocess.process.waitUntilExit()
    }

    func tradewire(_ arguments: [String]) async throws -> ProcessResult {
        try await runCLI(arguments + ["--socket", socket])
    }

    /// Every record get_event_history holds.
    func history() async throws -> [JSONValue] {
        let result = try await tradewire(["call", "get_event_history", "{}", "--json"])
        guard result.status == 0 else { throw SubprocessError(description: "history failed: \(result.stderr)") }
        let answer = try JSONParser.parse(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        return answer["events"]?.arrayValue ?? []
    }
}

/// A journal of `count` events (seq 1...count) in `directory`, written directly.
private func writeJournal(_ directory: String, count: Int, type: (Int) -> String = { _ in "test.tick" }) throws {
    let journal = try SQLiteJournal.open(
        directory: directory, sync: .normal,
        logger: Logger(label: "tradewire.cli.tests") { _ in SwiftLogNoOpLogHandler() })
    defer { journal.close() }
    var seq = 1
    while seq <= count {
        let batch = (seq...min(count, seq + 9_999)).map { sampleRecord($0, type: type($0)) }
        try journal.restore(batch)
        seq += batch.count
    }
}

/// A record with plausible data.
private func sampleRecord(_ seq: Int, type: String = "test.tick") -> JournalRecord {
    JournalRecord(
        seq: seq, type: type, timestamp: Date(timeIntervalSince1970: 1_764_500_000 + Double(seq) / 1000),
        data: Array(#"{"symbol":"SPY","seq":\#(seq),"price":512.25,"tags":["a","b"]}"#.utf8),
        metadata: Array(#"{"source":"test"}"#.utf8), dataType: "object", subscriberCount: seq % 3)
}

/// The lines an export of `count` such records (seq 1...count) holds.
private func exportLines(count: Int) -> String {
    var text = ""
    for seq in 1...count {
        var writer = JSONWriter()
        let record = sampleRecord(seq)
        record.encodeJSON(to: &writer, includeData: true, subscriberCount: record.subscriberCount)
        text += String(decoding: writer.bytes, as: UTF8.self) + "\n"
    }
    return text
}

/// `lstat`'s permission bits of `path`, or nil.
private func permissions(_ path: String) -> UInt32? {
    var status = stat()
    guard lstat(path, &status) == 0 else { return nil }
    return UInt32(status.st_mode) & 0o7777
}
