import ArgumentParser
import Foundation
import TradewireClient
import TradewireJSON
import TradewireRPC

#if canImport(Glibc)
    import Glibc
#endif

extension Tradewire {
    struct Consume: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Consume events through a durable consumer: at least once, each one acknowledged.",
            discussion: """
                Joins the consumer NAME (PROTOCOL §11), creating it on first use over the events \
                matching PATTERN (the pattern is fixed then). The daemon keeps its position across \
                disconnects and restarts and delivers each event until it is acknowledged. Several \
                `tradewire consume NAME` at once share the events (a queue group: each event goes to \
                one of them).

                Without --exec each event is printed as `tradewire subscribe` prints it (SEQ TIME TYPE \
                DATA, or one compact event object per line with --json), then acknowledged. With \
                --exec CMD, `sh -c CMD` runs once per event, one at a time: the event object on its \
                stdin, TW_EVENT_SEQ, TW_EVENT_TYPE, TW_DELIVERY_ATTEMPT (1 for a first delivery) and \
                TW_CONSUMER in its environment, its stdout passed through, its stderr prefixed with \
                [seq N]. Exit 0 acknowledges the event; any other exit (or a signal) refuses it (nak, \
                with "command exited N: <first stderr line>" as the error), so it comes again after \
                --nak-delay, with the next attempt; after --max-deliver attempts it becomes a dead \
                letter (tradewire dlq list).

                --since-seq, --ack-wait, --max-deliver and --max-in-flight configure a consumer when \
                it is created; a member joining an existing one may leave them out (other values are \
                refused). A lost connection \
                or a daemon that shuts down: reconnect (0.1 s doubling to 5 s) and subscribe again; \
                what was not acknowledged is delivered again. SIGINT or SIGTERM: stop (a command still \
                running gets SIGTERM and its event is refused at once) and exit 0.

                Examples:
                  tradewire consume audit audit_ready
                  tradewire consume billing 'order.*' --ack-wait 10000 --max-deliver 3 --json | jq .data
                  tradewire consume mailer 'user.signup' --exec 'jq -r .data.email | ./send-welcome'
                  tradewire consume backup '*' --since-seq 0 --exec 'cat >> /srv/events.jsonl'

                Exit codes: 0 stopped (or --count reached), 1 the daemon refused the subscription, \
                2 bad usage, 3 the daemon cannot be reached at start.
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("The consumer: 1-64 of A-Z a-z 0-9 _ . : -.", valueName: "name"))
        var name: String

        @Argument(help: ArgumentHelp("Event type pattern (* and ? allowed; '*' for everything).", valueName: "pattern"))
        var pattern: String

        @Option(
            name: .customLong("since-seq"),
            help: ArgumentHelp(
                "A new consumer starts after this seq (0: everything held; default: the next event).",
                valueName: "seq"))
        var sinceSeq: Int?

        @Option(
            name: .customLong("ack-wait"),
            help: ArgumentHelp(
                "Redeliver what is not acknowledged within this many ms (default 30000).", valueName: "ms"))
        var ackWait: Int?

        @Option(
            name: .customLong("max-deliver"),
            help: ArgumentHelp("Attempts before an event becomes a dead letter (default 5).", valueName: "n"))
        var maxDeliver: Int?

        @Option(
            name: .customLong("max-in-flight"),
            help: ArgumentHelp("Unacknowledged events out at once, over all members (default 256).", valueName: "n"))
        var maxInFlight: Int?

        @Option(
            name: .customLong("exec"),
            help: ArgumentHelp(
                "Run this shell command per event (event JSON on stdin); acknowledge on exit 0.", valueName: "cmd"))
        var command: String?

        @Option(
            name: .customLong("nak-delay"),
            help: ArgumentHelp(
                "With --exec: a failed event comes again after this many ms (default: at once).", valueName: "ms"))
        var nakDelay: Int?

        @Option(help: "Exit after N events acknowledged.")
        var count: Int?

        @Flag(help: "Do not truncate the data.")
        var wide = false

        func validate() throws {
            try EventNames.validateConsumer(name)
            try EventNames.validate(pattern, pattern: true)
            if let sinceSeq, sinceSeq < 0 { throw ValidationError("--since-seq must be 0 or more.") }
            for (option, value) in [
                ("--ack-wait", ackWait), ("--max-deliver", maxDeliver), ("--max-in-flight", maxInFlight),
            ] {
                if let value, value < 1 { throw ValidationError("\(option) must be 1 or more.") }
            }
            if let nakDelay, nakDelay < 0 { throw ValidationError("--nak-delay must be 0 or more.") }
            if nakDelay != nil && command == nil { throw ValidationError("--nak-delay only applies with --exec.") }
            if let command, command.trimmingCharacters(in: .whitespaces).isEmpty {
                throw ValidationError("--exec needs a command.")
            }
            if let count, count < 1 { throw ValidationError("--count must be 1 or more.") }
        }

        /// The subscribe params; `since_seq` only until the consumer exists (it places a new one).
        func subscribeParams(sinceSeq: Int?) -> JSONObject {
            var params: JSONObject = ["event_type": JSONValue(pattern), "consumer": JSONValue(name)]
            if let sinceSeq { params["since_seq"] = JSONValue(sinceSeq) }
            if let ackWait { params["ack_wait_ms"] = JSONValue(ackWait) }
            if let maxDeliver { params["max_deliver"] = JSONValue(maxDeliver) }
            if let maxInFlight { params["max_in_flight"] = JSONValue(maxInFlight) }
            return params
        }

        var handling: ConsumeSession.Handling {
            if let command { return .exec(command: command, nakDelay: nakDelay) }
            return .print(json: connection.json, wide: wide)
        }

        func run() async throws {
            // A command that stops reading its stdin, or a reader of our stdout that goes away,
            // must not kill consume.
            signal(SIGPIPE, SIG_IGN)
            let stop = StopSignal()
            stop.installHandlers()
            var backoff = Backoff()
            var pendingSinceSeq = sinceSeq
            var subscribedOnce = false
            var acknowledged = 0
            while !stop.isFired {
                let client: TradewireClient
                do {
                    client = try await TradewireClient.connect(socketPath: connection.socket)
                } catch {
                    if !subscribedOnce || Self.isUntrusted(error) {
                        Console.err(CommandRunner.describe(error))
                        throw ExitStatus.cannotConnect.exitCode
                    }
                    await ServeStage.pause(backoff.next(), unless: stop)
                    continue
                }
                do {
                    _ = try await client.call(
                        "subscribe", subscribeParams(sinceSeq: pendingSinceSeq), timeout: CommandRunner.quickTimeout)
                } catch {
                    await client.close()
                    if case .rpc(let rpc) = error, !Self.isTransient(rpc) {
                        Console.err(CommandRunner.describe(rpc))
                        throw ExitStatus.rpcError.exitCode
                    }
                    // shutting_down, overloaded, a lost connection: try again.
                    await ServeStage.pause(backoff.next(), unless: stop)
                    continue
                }
                if !subscribedOnce { Console.err("consuming \(pattern) as \(name)") }
                subscribedOnce = true
                pendingSinceSeq = nil
                backoff.reset()
                let session = ConsumeSession(
                    client: client, consumer: name, handling: handling, limit: count.map { $0 - acknowledged })
                let end = await session.run(until: stop)
                acknowledged += session.acknowledgedCount
                await client.close()
                switch end {
                case .stopped, .finished:
                    return
                case .shutdown:
                    Console.err("tradewire: the daemon is shutting down; subscribing again when it is back")
                case .disconnected:
                    Console.err("tradewire: lost the connection to tradewired; reconnecting")
                }
                await ServeStage.pause(backoff.next(), unless: stop)
            }
        }

        /// Errors worth another subscribe after a pause.
        static func isTransient(_ error: RPCError) -> Bool {
            ["shutting_down", "overloaded", "cluster_unavailable"].contains(error.type)
        }

        private static func isUntrusted(_ error: ClientError) -> Bool {
            if case .untrusted = error { return true }
            return false
        }
    }
}
