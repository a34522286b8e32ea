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
    struct JournalImport: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "Load JSON lines written by `journal export` into an empty journal, keeping seqs and times.",
            discussion: """
                Opens DATA_DIR/tradewire.db as the daemon does (created if needed, with the data \
                dir's lock): it fails with exit 2 while tradewired runs on the data dir, and with \
                exit 1 when the journal already holds events (import into a new --data-dir). A \
                daemon started on the data dir afterwards serves the imported history and numbers \
                its next event after the newest imported one.

                Every line is checked: a JSON object with exactly the history record's fields \
                (seq, event_type, timestamp, data, metadata, subscriber_count, data_type), a valid \
                event type, an RFC 3339 timestamp, a metadata object, a data_type matching the \
                data; seqs consecutive (an export made with --type has gaps and is refused: it \
                needs a full export, with or without --since). Lines are at most 65 MiB; blank \
                lines are skipped. The first bad line stops the import with its line number.

                Records are stored in transactions of \(Self.batchSize). When the import fails or \
                is interrupted (Ctrl-C), the partly filled DATA_DIR/tradewire.db is deleted before \
                the data dir is released, so no daemon ever starts on half an import; fix the \
                input and run the import again. (Only a kill -9 or a crash mid-import leaves it \
                behind: delete DATA_DIR/tradewire.db* then.) A summary line ends on stderr: \
                imported N events (seq A…B) into DIR.

                Examples:
                  tradewire journal import events.jsonl --data-dir /srv/tw-restored
                  tradewire journal export | tradewire journal import - --data-dir copy
                """)

        @OptionGroup var options: JournalOptions

        @Argument(
            help: ArgumentHelp("JSON lines from `tradewire journal export` ('-': stdin).", valueName: "file"),
            completion: .file())
        var file: String

        /// Records per transaction.
        static let batchSize = 1000
        /// Longest line read: the daemon's largest message (64 MiB) plus room for the record's
        /// own fields.
        static let maximumLineBytes = 65 * 1_048_576

        func validate() throws {
            if file.isEmpty { throw ValidationError("FILE must not be empty ('-' for stdin).") }
        }

        func run() throws {
            try JournalFailure.reporting { try importFile() }
        }

        private func importFile() throws {
            let directory = try options.directory()
            // The input is opened first: a mistyped FILE leaves the data dir alone.
            let input = try InputFile(file)
            defer { input.release() }
            let databasePath = directory + "/tradewire.db"
            var status = stat()
            let existed = lstat(databasePath, &status) == 0
            let journal: SQLiteJournal
            do {
                journal = try SQLiteJournal.open(directory: directory, sync: .normal, logger: journalLogger)
            } catch {
                throw JournalFailure(error)
            }
            let summary: JournalSummary
            do {
                summary = try journal.summary()
            } catch {
                journal.close()
                throw error
            }
            guard summary.events == 0 else {
                journal.close()
                let range = "seq \(summary.oldestSeq ?? 0)…\(summary.newestSeq ?? 0)"
                throw JournalFailure(
                    "the journal in \(journal.directory) already holds \(summary.events) events (\(range)); "
                        + "import only into an empty journal: give a new --data-dir")
            }

            Interruption.install()
            var progress = ProgressBar(
                "importing", unit: .bytes, total: input.size, enabled: options.showsProgress)
            var stored = false
            var imported = 0
            var first: Int?
            var last: (seq: Int, line: Int)?
            do {
                var reader = LineReader(
                    name: input.name, descriptor: input.descriptor, maximumLength: Self.maximumLineBytes)
                var batch: [JournalRecord] = []
                batch.reserveCapacity(Self.batchSize)
                try reader.forEachLine { bytes, number, consumed in
                    try Interruption.check()
                    if bytes.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }) { return }
                    let record: JournalRecord
                    do throws(HistoryLine.Problem) {
                        record = try HistoryLine.record(bytes)
                    } catch {
                        throw JournalFailure("\(input.name) line \(number): \(error.message)")
                    }
                    if let last {
                        try Self.checkOrder(record.seq, after: last, line: number, in: input.name)
                    }
                    batch.append(record)
                    if batch.count == Self.batchSize {
                        try journal.restore(batch)
                        stored = true
                        batch.removeAll(keepingCapacity: true)
                    }
                    imported += 1
                    if first == nil { first = record.seq }
                    last = (record.seq, number)
                    progress.update(consumed, note: "\(imported) events")
                }
                try Interruption.check()
                if !batch.isEmpty {
                    try journal.restore(batch)
                    stored = true
                }
                let after = try journal.summary()
                guard after.events == imported, after.newestSeq == last?.seq else {
                    throw JournalFailure(
                        "the journal holds \(after.events) events up to seq \(after.newestSeq ?? 0) "
                            + "after importing \(imported) up to seq \(last?.seq ?? 0)")
                }
            } catch {
                progress.finish(note: "\(imported) events")
                var failure =
                    (error as? JournalFailure) ?? (error as? JournalError).map(JournalFailure.init)
                    ?? JournalFailure("\(error)")
                // A failed import leaves no journal to start a daemon on: the database goes while
                // the lock is still held (closing releases it), so no daemon can open it between.
                if stored || !existed {
                    Self.removeDatabase(journal.databasePath)
                    failure.message += stored ? "; nothing was imported (\(journal.databasePath) was removed)" : ""
                }
                journal.close()
                // Already a JournalError's own exit code when it came from the journal (1 for I/O).
                if error is JournalError { failure.code = ExitStatus.rpcError.code }
                throw failure
            }
            journal.close()
            progress.finish(note: "\(imported) events")
            let range = first.map { first in " (seq \(first)…\(last?.seq ?? first))" } ?? ""
            Console.err("imported \(imported) events\(range) into \(journal.directory)")
        }

        /// Seqs strictly increasing and consecutive.
        static func checkOrder(
            _ seq: Int, after previous: (seq: Int, line: Int), line: Int, in name: String
        ) throws(JournalFailure) {
            if seq <= previous.seq {
                throw JournalFailure(
                    "\(name) line \(line): seq \(seq) is not above seq \(previous.seq) of line \(previous.line); "
                        + "records must be in increasing seq order, as export writes them")
            }
            if seq != previous.seq + 1 {
                throw JournalFailure(
                    "\(name) line \(line): seq \(seq) follows seq \(previous.seq) of line \(previous.line), "
                        + "leaving a gap of \(seq - previous.seq - 1); an import needs a full export "
                        + "(an export made with --type leaves gaps): tradewire journal export [--since SEQ]")
            }
        }

        /// Deletes the database and its WAL files (their open descriptors stay valid until
        /// the journal closes).
        static func removeDatabase(_ path: String) {
            for name in [path, path + "-wal", path + "-shm"] { _ = unlink(name) }
        }
    }
}

/// The import's input: a file (its size known, for progress) or stdin.
struct InputFile {
    /// `stdin`, or the path as given.
    let name: String
    let descriptor: Int32
    /// Bytes, for a regular file.
    let size: Int?

    init(_ path: String) throws(JournalFailure) {
        if path == "-" {
            name = "stdin"
            descriptor = STDIN_FILENO
        } else {
            name = path
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { throw JournalFailure("cannot open \(path): \(errnoText())") }
        }
        var status = stat()
        if fstat(descriptor, &status) == 0, UInt32(status.st_mode) & 0o170000 == 0o100000 {
            size = Int(status.st_size)
        } else if fstat(descriptor, &status) == 0, UInt32(status.st_mode) & 0o170000 == 0o040000 {
            if descriptor != STDIN_FILENO { _ = close(descriptor) }
            throw JournalFailure("\(path) is a directory; give the file an export wrote", status: .usage)
        } else {
            size = nil
        }
    }

    func release() {
        if descriptor != STDIN_FILENO { _ = close(descriptor) }
    }
}

/// Lines of a file descriptor, read in large blocks; a line longer than `maximumLength`
/// bytes is an error (so memory stays bounded). A final line without a newline counts; a
/// `\r` before the newline is dropped.
struct LineReader {
    /// The input's name, for messages.
    let name: String
    let descriptor: Int32
    let maximumLength: Int
    /// Where `buffer` starts in the input.
    private var bufferOffset = 0
    private var buffer: [UInt8] = []
    private var chunk: [UInt8]

    init(name: String, descriptor: Int32, maximumLength: Int, chunkSize: Int = 1_048_576) {
        self.name = name
        self.descriptor = descriptor
        self.maximumLength = maximumLength
        self.chunk = [UInt8](repeating: 0, count: chunkSize)
    }

    /// Calls `body` with each line (without its newline), its number (from 1) and how many
    /// bytes of the input it and the lines before it take.
    mutating func forEachLine(_ body: (ArraySlice<UInt8>, Int, Int) throws -> Void) throws {
        var number = 0
        var start = 0
        var searched = 0
        var ended = false
        while true {
            if let newline = buffer[(start + searched)...].firstIndex(of: UInt8(ascii: "\n")) {
                number += 1
                guard newline - start <= maximumLength else { throw tooLong(number) }
                var end = newline
                if end > start, buffer[end - 1] == UInt8(ascii: "\r") { end -= 1 }
                try body(buffer[start..<end], number, bufferOffset + newline + 1)
                start = newline + 1
                searched = 0
                continue
            }
            searched = buffer.count - start
            if searched > maximumLength { throw tooLong(number + 1) }
            if ended {
                if searched > 0 { try body(buffer[start...], number + 1, bufferOffset + buffer.count) }
                return
            }
            // Keep the unfinished line only, then read more behind it.
            buffer.removeSubrange(0..<start)
            bufferOffset += start
            start = 0
            let count = try readChunk()
            if count == 0 {
                ended = true
            } else {
                buffer.append(contentsOf: chunk[0..<count])
            }
        }
    }

    private mutating func readChunk() throws(JournalFailure) -> Int {
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count >= 0 { return count }
            if errno != EINTR { throw JournalFailure("cannot read \(name): \(errnoText())") }
        }
    }

    private func tooLong(_ number: Int) -> JournalFailure {
        JournalFailure("\(name) line \(number) is longer than \(maximumLength / 1_048_576) MiB")
    }
}

/// One line of an export: a history record (PROTOCOL §3) back into a ``JournalRecord``.
enum HistoryLine {
    struct Problem: Error {
        var message: String
        init(_ message: String) { self.message = message }
    }

    static let fields: Set<String> = [
        "seq", "event_type", "timestamp", "data", "metadata", "subscriber_count", "data_type",
    ]
    static let dataTypes: Set<String> = ["object", "array", "string", "number", "boolean", "null"]

    /// The record a line holds; `data` and `metadata` are stored compact, as the daemon
    /// writes them.
    static func record(_ bytes: ArraySlice<UInt8>) throws(Problem) -> JournalRecord {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw Problem("not valid JSON: \(error)")
        }
        guard case .object(let object) = value else {
            throw Problem("a history record is a JSON object, got \(value.typeName)")
        }
        var seen = Set<String>()
        for member in object.members {
            guard fields.contains(member.key) else { throw Problem("unknown field \"\(member.key)\"") }
            guard seen.insert(member.key).inserted else { throw Problem("field \"\(member.key)\" appears twice") }
        }
        for field in ["seq", "event_type", "timestamp", "data", "metadata", "subscriber_count", "data_type"]
        where object[field] == nil {
            throw Problem("missing field \"\(field)\"")
        }
        guard let seq = object["seq"]?.intValue, seq >= 1 else {
            throw Problem("\"seq\" must be an integer of 1 or more, got \(preview(object["seq"]))")
        }
        guard let type = object["event_type"]?.stringValue else {
            throw Problem("\"event_type\" must be a string, got \(preview(object["event_type"]))")
        }
        do {
            try EventName.validateType(type)
        } catch {
            throw Problem("bad \"event_type\" \(preview(object["event_type"])): \(error.description)")
        }
        guard let text = object["timestamp"]?.stringValue, let timestamp = timestamp(text) else {
            throw Problem(
                "\"timestamp\" must be an RFC 3339 time like \"2025-11-30T16:27:08.123456Z\", "
                    + "got \(preview(object["timestamp"]))")
        }
        guard let data = object["data"] else { throw Problem("missing field \"data\"") }
        guard case .object(let metadata)? = object["metadata"] else {
            throw Problem("\"metadata\" must be an object, got \(preview(object["metadata"]))")
        }
        guard let subscribers = object["subscriber_count"]?.intValue, subscribers >= 0 else {
            throw Problem(
                "\"subscriber_count\" must be an integer of 0 or more, got \(preview(object["subscriber_count"]))")
        }
        guard let dataType = object["data_type"]?.stringValue, dataTypes.contains(dataType) else {
            throw Problem(
                "\"data_type\" must be one of object, array, string, number, boolean, null, "
                    + "got \(preview(object["data_type"]))")
        }
        guard dataType == data.typeName else {
            throw Problem("\"data_type\" is \"\(dataType)\" but the data is \(article(data.typeName))")
        }
        return JournalRecord(
            seq: seq, type: type, timestamp: timestamp, data: JSONWriter.encode(data),
            metadata: JSONWriter.encode(JSONValue.object(metadata)), dataType: dataType,
            subscriberCount: subscribers)
    }

    /// A full RFC 3339 date-time (`T`, a time and a zone), as history writes them.
    static func timestamp(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, [UInt8(ascii: "T"), UInt8(ascii: "t")].contains(bytes[10]) else { return nil }
        let last = bytes[bytes.count - 1]
        let zoned =
            last == UInt8(ascii: "Z") || last == UInt8(ascii: "z")
            || (bytes.count >= 26 && [UInt8(ascii: "+"), UInt8(ascii: "-")].contains(bytes[bytes.count - 6]))
        guard zoned else { return nil }
        return RFC3339.date(from: text)
    }

    /// A value as JSON, cut to stay readable in a message.
    private static func preview(_ value: JSONValue?) -> String {
        guard let value else { return "nothing" }
        return Format.truncate(JSONWriter.string(value), to: 40)
    }

    private static func article(_ typeName: String) -> String {
        switch typeName {
        case "object", "array": "an \(typeName)"
        case "null": "null"
        default: "a \(typeName)"
        }
    }
}
