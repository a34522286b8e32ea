import ArgumentParser
import TradewireClient
import TradewireJSON

extension Tradewire {
    struct Subscribe: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print events as they are published.",
            discussion: """
                One line per event: SEQ TIME TYPE DATA (compact, cut to fit; --wide keeps it whole). \
                With --json, one compact event object per line ({seq, event_type, timestamp, data, \
                metadata}), flushed at once, for jq. Several patterns are subscribed separately; an \
                event matching more than one is printed once. Dropped-event notices go to stderr. \
                Ends after --count events, or with exit 0 when the daemon shuts down.

                Examples:
                  tradewire subscribe '*'
                  tradewire subscribe audit_ready executed_ready --since 0
                  tradewire subscribe 'price.*' --json --count 10 | jq .data.last
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(
            help: ArgumentHelp("Event type patterns (* and ? allowed; '*' for everything).", valueName: "pattern"))
        var patterns: [String]

        @Option(
            name: .customLong("since"),
            help: ArgumentHelp("Replay recorded events with seq > SEQ first (0: all held).", valueName: "seq"))
        var sinceSeq: Int?

        @Option(help: "Exit after N events.")
        var count: Int?

        @Flag(help: "Do not truncate the data.")
        var wide = false

        func validate() throws {
            guard !patterns.isEmpty else { throw ValidationError("Give at least one pattern ('*' for every event).") }
            for pattern in patterns { try EventNames.validate(pattern, pattern: true) }
            if let sinceSeq, sinceSeq < 0 { throw ValidationError("--since must be 0 or more.") }
            if let count, count < 1 { throw ValidationError("--count must be 1 or more.") }
        }

        func run() async throws {
            try await CommandRunner.run(connection) { client in
                for pattern in patterns {
                    _ = try await client.subscribe(pattern, sinceSeq: sinceSeq)
                }
                var seen = SeenSeqs()
                var printed = 0
                for await notification in client.notifications {
                    switch notification.method {
                    case "event":
                        guard let event = notification.params["event"], let seq = event["seq"]?.intValue,
                            seen.insert(seq)
                        else { continue }
                        // The reader went away (`| head -3`): a normal end.
                        guard Console.out(connection.json ? JSONWriter.string(event) : line(for: event)) else { return }
                        printed += 1
                        if let count, printed >= count { return }
                    case "events_dropped":
                        Console.err(Self.droppedNotice(notification.params))
                    case "shutdown":
                        let reason = notification.params["reason"]?.stringValue.map { ": \($0)" } ?? ""
                        Console.err("tradewire: the daemon is shutting down\(reason)")
                        return
                    default:
                        continue
                    }
                }
                throw ClientError.connectionClosed
            }
        }

        func line(for event: JSONValue) -> String { Self.line(for: event, wide: wide) }

        /// SEQ TIME TYPE DATA, the data cut to 60 characters unless `wide`.
        static func line(for event: JSONValue, wide: Bool) -> String {
            let head =
                "\(Format.cell(event["seq"])) \(Format.time(event["timestamp"])) \(Format.cell(event["event_type"]))"
            return head + " " + Format.truncate(JSONWriter.string(event["data"] ?? .null), to: wide ? nil : 60)
        }

        static func droppedNotice(_ params: JSONValue) -> String {
            let count = params["count"]?.intValue.map(String.init) ?? "an unknown number of"
            return "tradewire: \(count) events dropped on \(Format.cell(params["subscription"])) "
                + "(seq \(Format.cell(params["first_seq"]))…\(Format.cell(params["last_seq"]))); "
                + "fetch them with `tradewire history --since SEQ`"
        }
    }
}

/// The seqs already printed, bounded: an event matching several subscriptions arrives once
/// per subscription, close together, so a window of recent seqs is enough.
struct SeenSeqs {
    private var set = Set<Int>()
    private var order: [Int] = []
    private var head = 0
    let capacity: Int

    init(capacity: Int = 4096) { self.capacity = capacity }

    /// True when `seq` was not seen before.
    mutating func insert(_ seq: Int) -> Bool {
        guard set.insert(seq).inserted else { return false }
        if order.count < capacity {
            order.append(seq)
        } else {
            set.remove(order[head])
            order[head] = seq
            head = (head + 1) % capacity
        }
        return true
    }
}
