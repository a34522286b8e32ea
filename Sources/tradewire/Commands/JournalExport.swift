import ArgumentParser
import Foundation
import TradewireBus
import TradewireJSON
import TradewireJournal

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension Tradewire.Journal {
    struct JournalExport: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export",
            abstract: "Write the journal's events as JSON lines (one history record per line), oldest first.",
            discussion: """
                Reads DATA_DIR/tradewire.db read-only, without the data dir's lock: it works while \
                tradewired runs on the data dir, and when none does. The export covers the events \
                up to the newest one when it starts (later ones are left for the next export: \
                --since the last seq it printed). Memory stays bounded however long the journal.

                Each line is the history record of get_event_history: {"seq", "event_type", \
                "timestamp", "data", "metadata", "subscriber_count", "data_type"}. --type leaves \
                gaps in the seqs, so such an export cannot be imported; --since keeps a consecutive \
                run and can.

                With --output the file is written under a temporary name beside FILE (mode 0600) \
                and renamed over FILE at the end, so FILE is never half written and a symlink at \
                FILE is replaced, not followed. Without it the lines go to stdout. A summary line \
                ends on stderr: exported N events (seq A…B) to FILE.

                Examples:
                  tradewire journal export --output events.jsonl
                  tradewire journal export --data-dir /srv/tw --since 5000 -o since-5000.jsonl
                  tradewire journal export --type 'audit_*' | jq -c '.data.metrics'
                """)

        @OptionGroup var options: JournalOptions

        @Option(name: .customLong("since"), help: ArgumentHelp("Only events with seq > SEQ.", valueName: "seq"))
        var sinceSeq: Int?

        @Option(
            name: .customLong("type"),
            help: ArgumentHelp("Only events whose type matches (* and ? allowed).", valueName: "pattern"))
        var eventType: String?

        @Option(
            name: .shortAndLong,
            help: ArgumentHelp("Write to FILE instead of stdout ('-': stdout).", valueName: "file"),
            completion: .file())
        var output: String?

        /// Records read per query: bounded memory, few round trips.
        static let pageSize = 512

        func validate() throws {
            if let eventType { try EventNames.validate(eventType, pattern: true) }
            if let sinceSeq, sinceSeq < 0 { throw ValidationError("--since must be 0 or more.") }
            if let output, output.isEmpty { throw ValidationError("--output must not be empty ('-' for stdout).") }
        }

        func run() throws {
            try JournalFailure.reporting { try export() }
        }

        private func export() throws {
            let directory = try options.directory()
            let journal: SQLiteJournal
            do {
                journal = try SQLiteJournal.openForReading(directory: directory, logger: journalLogger)
            } catch {
                throw JournalFailure(error)
            }
            defer { journal.close() }
            let summary = try journal.summary()
            // The export ends at the newest event when it starts.
            let upper = summary.newestSeq ?? 0
            let after = sinceSeq ?? 0
            var total: Int?
            if options.showsProgress {
                if let eventType {
                    total = try journal.count(afterSeq: after, throughSeq: upper, pattern: eventType)
                } else {
                    total = max(0, upper - max(after, (summary.oldestSeq ?? 1) - 1))
                }
            }

            let destination: ExportFile
            if let output, output != "-" {
                destination = try ExportFile.create(output)
            } else {
                destination = ExportFile.stdout
            }
            Interruption.install()
            var progress = ProgressBar(
                "exporting", unit: .count("events"), total: total, enabled: options.showsProgress)
            var exported = 0
            var first: Int?
            var last: Int?
            do {
                try journal.scan(afterSeq: after, pattern: eventType, pageSize: Self.pageSize) { record in
                    guard record.seq <= upper else { return false }
                    try Interruption.check()
                    // The journal's seqs are one run; a hole here means retention removed events
                    // between two pages (a daemon pruning an export that fell behind).
                    if eventType == nil, let last, record.seq != last + 1 {
                        throw JournalFailure(
                            "seq \(record.seq) follows seq \(last): the daemon's retention removed events "
                                + "while they were being exported; export again")
                    }
                    var writer = JSONWriter(reservingCapacity: 128 + record.data.count + record.metadata.count)
                    record.encodeJSON(to: &writer, includeData: true, subscriberCount: record.subscriberCount)
                    try destination.append(writer.bytes)
                    exported += 1
                    if first == nil { first = record.seq }
                    last = record.seq
                    progress.update(exported)
                    return true
                }
                try destination.commit()
            } catch {
                progress.finish()
                destination.discard()
                throw error
            }
            progress.finish()
            let range = first.map { first in " (seq \(first)…\(last ?? first))" } ?? ""
            Console.err("exported \(exported) events\(range) to \(destination.name)")
        }
    }
}

/// Where an export goes: stdout, or a file written under a temporary name beside it
/// (created with `O_EXCL | O_NOFOLLOW`, mode 0600) and renamed over it by ``commit()``.
/// Output is buffered and written in large blocks.
final class ExportFile {
    /// `stdout`, or the path as given.
    let name: String
    private var descriptor: Int32
    private let path: String?
    private let temporaryPath: String?
    private var buffer: [UInt8] = []
    private var finished = false
    private static let blockSize = 256 * 1024

    private init(name: String, descriptor: Int32, path: String?, temporaryPath: String?) {
        self.name = name
        self.descriptor = descriptor
        self.path = path
        self.temporaryPath = temporaryPath
        buffer.reserveCapacity(Self.blockSize + 4096)
    }

    deinit { discard() }

    static var stdout: ExportFile {
        ExportFile(name: "stdout", descriptor: STDOUT_FILENO, path: nil, temporaryPath: nil)
    }

    /// Opens a new temporary file in `path`'s directory.
    static func create(_ path: String) throws(JournalFailure) -> ExportFile {
        var status = stat()
        if stat(path, &status) == 0, UInt32(status.st_mode) & 0o170000 == 0o040000 {
            throw JournalFailure("--output \(path) is a directory; give a file name", status: .usage)
        }
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !base.isEmpty else { throw JournalFailure("--output \(path) names no file", status: .usage) }
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let temporary = (directory == "/" ? "" : directory) + "/.\(base).tmp-\(getpid())-\(suffix)"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw JournalFailure("cannot create a file in \(directory) for \(path): \(errnoText())")
        }
        return ExportFile(name: path, descriptor: descriptor, path: path, temporaryPath: temporary)
    }

    /// Adds one line (`json` and a newline).
    func append(_ json: [UInt8]) throws(JournalFailure) {
        buffer.append(contentsOf: json)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count >= Self.blockSize { try flush() }
    }

    /// Writes what is buffered.
    func flush() throws(JournalFailure) {
        var offset = 0
        while offset < buffer.count {
            let written = buffer.withUnsafeBytes { bytes in
                write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw JournalFailure("cannot write \(name): \(errnoText())")
            }
            offset += written
        }
        buffer.removeAll(keepingCapacity: true)
    }

    /// Writes the rest; for a file: syncs it, renames it over the destination and syncs the
    /// directory, so the export survives a crash once this returns.
    func commit() throws(JournalFailure) {
        try flush()
        guard let path, let temporaryPath else { return }
        guard fsync(descriptor) == 0 else { throw JournalFailure("cannot write \(path): \(errnoText())") }
        _ = close(descriptor)
        descriptor = -1
        guard rename(temporaryPath, path) == 0 else {
            throw JournalFailure("cannot rename \(temporaryPath) to \(path): \(errnoText())")
        }
        finished = true
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let directoryDescriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            _ = close(directoryDescriptor)
        }
    }

    /// Removes the temporary file of an export that did not finish.
    func discard() {
        guard let temporaryPath, !finished else { return }
        if descriptor >= 0 {
            _ = close(descriptor)
            descriptor = -1
        }
        _ = unlink(temporaryPath)
        finished = true
    }
}

/// The current `errno`'s text.
func errnoText() -> String {
    let code = errno
    guard let text = strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}
