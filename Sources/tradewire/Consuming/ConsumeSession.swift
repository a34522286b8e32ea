import Foundation
import Synchronization
import TradewireClient
import TradewireJSON

/// One delivery of a durable consumer (PROTOCOL §11): an `event` notification whose params
/// carry `delivery: {consumer, attempt}`.
struct ConsumerDelivery: Sendable {
    var seq: Int
    var attempt: Int
    var eventType: String
    /// The Event object, as the daemon sent it.
    var event: JSONValue

    /// Nil for a notification that is not a consumer's event.
    init?(_ params: JSONValue) {
        guard let event = params["event"], let seq = event["seq"]?.intValue,
            let attempt = params["delivery"]?["attempt"]?.intValue
        else { return nil }
        self.seq = seq
        self.attempt = attempt
        self.eventType = event["event_type"]?.stringValue ?? ""
        self.event = event
    }
}

/// One connection's membership of a consumer for `tradewire consume`: handles its deliveries
/// one at a time, in arrival order, and settles each: `ack` once it was printed (or its
/// command exited 0), `nak` when its command failed or was stopped.
final class ConsumeSession: Sendable {
    /// Why a session ended.
    enum End: Sendable {
        /// The connection closed.
        case disconnected
        /// The daemon sent `shutdown`.
        case shutdown
        /// SIGINT or SIGTERM.
        case stopped
        /// `--count` events were acknowledged, or stdout went away.
        case finished
    }

    /// What is done with each delivery.
    enum Handling: Sendable {
        /// Print it as `subscribe` does.
        case print(json: Bool, wide: Bool)
        /// Run a shell command with the event on stdin.
        case exec(command: String, nakDelay: Int?)
    }

    /// How one delivery went.
    private enum Outcome {
        case acked, refused, outputClosed, stopped
    }

    let client: TradewireClient
    let consumer: String
    let handling: Handling
    /// Acknowledged deliveries after which the session finishes (nil: no limit).
    let limit: Int?
    private let acknowledged = Atomic<Int>(0)

    /// Deliveries acknowledged so far.
    var acknowledgedCount: Int { acknowledged.load(ordering: .relaxed) }

    init(client: TradewireClient, consumer: String, handling: Handling, limit: Int?) {
        self.client = client
        self.consumer = consumer
        self.handling = handling
        self.limit = limit
    }

    /// Handles deliveries until the connection ends, the daemon shuts down, `stop` fires or
    /// the limit is reached. A command still running when `stop` fires is stopped (SIGTERM,
    /// then SIGKILL) and its delivery refused, so another member may take it at once.
    func run(until stop: StopSignal) async -> End {
        await withTaskGroup(of: End.self) { group in
            group.addTask { await self.consume() }
            group.addTask {
                await stop.wait()
                return .stopped
            }
            let end = await group.next() ?? .disconnected
            group.cancelAll()
            while await group.next() != nil {}
            return end
        }
    }

    private func consume() async -> End {
        if let limit, acknowledgedCount >= limit { return .finished }
        for await notification in client.notifications {
            switch notification.method {
            case "event":
                guard let delivery = ConsumerDelivery(notification.params) else { continue }
                switch await handle(delivery) {
                case .acked:
                    let count = acknowledged.add(1, ordering: .relaxed).newValue
                    if let limit, count >= limit { return .finished }
                case .refused:
                    continue
                case .outputClosed:
                    return .finished
                case .stopped:
                    return .stopped
                }
            case "shutdown":
                return .shutdown
            default:
                continue
            }
        }
        return Task.isCancelled ? .stopped : .disconnected
    }

    private func handle(_ delivery: ConsumerDelivery) async -> Outcome {
        switch handling {
        case .print(let json, let wide):
            let line =
                json ? JSONWriter.string(delivery.event) : Tradewire.Subscribe.line(for: delivery.event, wide: wide)
            // The reader went away (`| head -3`): a normal end; the event goes to someone else.
            guard Console.out(line) else {
                await nak(delivery, delay: nil, error: "stdout closed")
                return .outputClosed
            }
            return await ack(delivery) ? .acked : .refused
        case .exec(let command, let nakDelay):
            return await execute(command, for: delivery, nakDelay: nakDelay)
        }
    }

    /// Runs `sh -c COMMAND` with the event on stdin and TW_EVENT_SEQ, TW_EVENT_TYPE,
    /// TW_DELIVERY_ATTEMPT and TW_CONSUMER in its environment; its stdout is ours, its stderr
    /// ours with a `[seq N] ` prefix.
    private func execute(_ command: String, for delivery: ConsumerDelivery, nakDelay: Int?) async -> Outcome {
        let environment = [
            "TW_EVENT_SEQ": String(delivery.seq), "TW_EVENT_TYPE": delivery.eventType,
            "TW_DELIVERY_ATTEMPT": String(delivery.attempt), "TW_CONSUMER": consumer,
        ]
        let process: HandlerProcess
        do {
            process = try HandlerProcess.spawn(
                ["/bin/sh", "-c", command], input: JSONWriter.encode(delivery.event) + [UInt8(ascii: "\n")],
                outputLimit: 1, stderrPrefix: "[seq \(delivery.seq)] ", environment: environment, passStdout: true)
        } catch {
            await refuse(delivery, delay: nakDelay, reason: "cannot run /bin/sh: \(error)")
            return .refused
        }
        let outcome = await withTaskCancellationHandler {
            await process.finished()
        } onCancel: {
            process.terminate()
        }
        if Task.isCancelled {
            await refuse(delivery, delay: nil, reason: "consume stopped: command killed")
            return .stopped
        }
        let detail = outcome.firstStderrLine.map { ": " + Format.truncate($0, to: 200) } ?? ""
        switch outcome.termination {
        case .exited(0):
            return await ack(delivery) ? .acked : .refused
        case .exited(let code):
            await refuse(delivery, delay: nakDelay, reason: "command exited \(code)\(detail)")
        case .signaled(let signal):
            await refuse(delivery, delay: nakDelay, reason: "command killed by signal \(signal)\(detail)")
        }
        return .refused
    }

    /// `ack {consumer, seq}`; false (and a notice) when it did not reach the daemon: the event
    /// is then delivered again.
    private func ack(_ delivery: ConsumerDelivery) async -> Bool {
        do {
            _ = try await client.call(
                "ack", ["consumer": JSONValue(consumer), "seq": JSONValue(delivery.seq)],
                timeout: CommandRunner.quickTimeout)
            return true
        } catch {
            Console.err("tradewire: ack of seq \(delivery.seq) failed (\(error)); it will be delivered again")
            return false
        }
    }

    private func refuse(_ delivery: ConsumerDelivery, delay: Int?, reason: String) async {
        Console.err("tradewire: seq \(delivery.seq) (attempt \(delivery.attempt)) not acknowledged: \(reason)")
        await nak(delivery, delay: delay, error: reason)
    }

    /// `nak {consumer, seq, delay_ms?, error}`; a failure only delays the redelivery until
    /// ack_wait, so it is reported and otherwise ignored.
    private func nak(_ delivery: ConsumerDelivery, delay: Int?, error reason: String) async {
        var params: JSONObject = [
            "consumer": JSONValue(consumer), "seq": JSONValue(delivery.seq), "error": JSONValue(reason),
        ]
        if let delay { params["delay_ms"] = JSONValue(delay) }
        do {
            _ = try await client.call("nak", params, timeout: CommandRunner.quickTimeout)
        } catch {
            Console.err("tradewire: nak of seq \(delivery.seq) failed (\(error)); it comes again after ack_wait")
        }
    }
}
