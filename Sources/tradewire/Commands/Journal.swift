import ArgumentParser
import Foundation
import Logging
import Synchronization
import TradewireBus
import TradewireJournal

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Tradewire {
    struct Journal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export or import the daemon's event journal (DATA_DIR/tradewire.db).",
            discussion: """
                These commands work on the journal file itself, not through the socket. Export \
                reads it read-only and takes no lock, so it works while tradewired runs on the \
                data dir and when none does; import needs the data dir to itself (no daemon on it) \
                and an empty journal. The file format is JSON lines: one history record per line \
                ({"seq", "event_type", "timestamp", "data", "metadata", "subscriber_count", \
                "data_type"}, as get_event_history returns them), oldest first.

                The data dir is found as the daemon finds it: --data-dir DIR, then \
                TRADEWIRE_DATA_DIR, then $XDG_STATE_HOME/tradewire, then $HOME/.local/state/tradewire.

                Examples:
                  tradewire journal export --data-dir /var/lib/tradewire --output events.jsonl
                  tradewire journal export --since 1200 --type 'audit_*' | jq .data.summary
                  tradewire journal import events.jsonl --data-dir /tmp/tradewire-copy
                  tradewire journal export | tradewire journal import - --data-dir copy

                Exit codes: 0 ok, 1 failure (I/O, malformed input, a journal that already holds \
                events), 2 bad usage or an unusable data dir (missing, not a journal, in use by \
                tradewired).
                """,
            subcommands: [JournalExport.self, JournalImport.self])
    }
}

/// Options the journal commands share: where the data dir is and whether to show progress.
struct JournalOptions: ParsableArguments {
    @Option(
        name: .customLong("data-dir"),
        help: ArgumentHelp(
            "The daemon's data dir (default: TRADEWIRE_DATA_DIR, $XDG_STATE_HOME/tradewire, $HOME/.local/state/tradewire).",
            valueName: "dir"),
        completion: .directory)
    var dataDir: String?

    @Flag(
        inversion: .prefixedNo,
        help: "Show a progress bar on stderr once the work takes over a second (default: when stderr is a terminal).")
    var progress: Bool?

    func validate() throws {
        if let dataDir, dataDir.isEmpty { throw ValidationError("--data-dir must not be empty.") }
    }

    /// The data dir, by the daemon's rule.
    func directory() throws(JournalFailure) -> String {
        guard let directory = DataDirectory.resolve(explicit: dataDir, environment: ProcessInfo.processInfo.environment)
        else {
            throw JournalFailure(
                "no data dir: give --data-dir DIR (or set TRADEWIRE_DATA_DIR, XDG_STATE_HOME or HOME)",
                status: .usage)
        }
        return directory
    }

    /// `--progress`, `--no-progress`, else whether stderr is a terminal.
    var showsProgress: Bool { progress ?? (isatty(STDERR_FILENO) == 1) }
}

/// Why a journal command stopped: printed as `tradewire: <message>`, then exit `code`.
struct JournalFailure: Error, CustomStringConvertible {
    var message: String
    /// 1 (a failure), 2 (bad usage, an unusable data dir), 128 + N (signal N).
    var code: Int32

    init(_ message: String, status: ExitStatus = .rpcError) {
        self.message = message
        self.code = status.code
    }

    /// A journal error: an unusable, incompatible or locked data dir is exit 2 (as for the
    /// daemon), an I/O failure exit 1.
    init(_ error: JournalError) {
        self.init(error.message, status: error.kind == .io ? .rpcError : .usage)
    }

    var description: String { message }

    /// Runs a command body, printing a failure and turning it into its exit code.
    static func reporting(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let failure as JournalFailure {
            Console.err("tradewire: \(failure.message)")
            throw ExitCode(failure.code)
        } catch let error as JournalError {
            Console.err("tradewire: \(error.message)")
            throw ExitCode(JournalFailure(error).code)
        }
    }
}

/// Warnings of the journal layer (a failed checkpoint, …) on stderr; its info lines are not
/// for a CLI user.
let journalLogger = Logger(label: "tradewire.journal") { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}

/// SIGINT, SIGTERM and SIGHUP turned into a flag that a long loop checks between records, so
/// an interrupted export or import can remove what it had half written before exiting.
enum Interruption {
    private static let received = Atomic<Int32>(0)

    /// From now on those signals set the flag instead of ending the process.
    static func install() {
        for number in [SIGINT, SIGTERM, SIGHUP] {
            _ = signal(number) { number in Interruption.received.store(number, ordering: .relaxed) }
        }
    }

    /// Throws once a signal came: exit 128 + the signal's number, as a shell reports it.
    static func check() throws(JournalFailure) {
        let number = received.load(ordering: .relaxed)
        guard number != 0 else { return }
        var failure = JournalFailure("interrupted (signal \(number))")
        failure.code = 128 + number
        throw failure
    }
}
