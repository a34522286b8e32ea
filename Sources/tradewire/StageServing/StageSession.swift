import Foundation
import Synchronization
import TradewireClient
import TradewireJSON
import TradewireRPC

/// What `serve-stage` runs for each call, and how.
struct StageCommand: Sendable {
    /// The command and its arguments (`arguments[0]` looked up on PATH).
    var arguments: [String]
    /// Most stdout bytes taken as a result.
    var outputLimit: Int
    /// Calls run at once.
    var concurrency: Int
}

/// One connection's membership of a stage group: takes `stage.handle` requests, runs the
/// command for each (at most ``StageCommand/concurrency`` at once) and replies; kills the
/// command of a call that is cancelled (`$/cancelRequest`) or passes its deadline, and
/// sends no reply for it (PROTOCOL §9).
final class StageSession: Sendable {
    /// Why a session ended.
    enum End: Sendable {
        /// The connection closed.
        case disconnected
        /// The daemon sent `shutdown`.
        case shutdown
        /// SIGINT or SIGTERM.
        case stopped
    }

    let client: TradewireClient
    let command: StageCommand
    /// The group's per-call timeout (`timeout_ms` of the registration).
    let timeout: Duration
    private let calls = Mutex<[String: StageCallControl]>([:])
    private let closing = Atomic<Bool>(false)
    private let queue: AsyncStream<PendingCall>
    private let enqueue: AsyncStream<PendingCall>.Continuation

    /// A call waiting for a free slot.
    struct PendingCall: Sendable {
        var request: IncomingRequest
        var control: StageCallControl
        var deadline: ContinuousClock.Instant
        var label: String
    }

    init(client: TradewireClient, command: StageCommand, timeout: Duration) {
        self.client = client
        self.command = command
        self.timeout = timeout
        (queue, enqueue) = AsyncStream<PendingCall>.makeStream(bufferingPolicy: .unbounded)
    }

    /// Serves calls until the connection ends, the daemon shuts down or `stop` fires. Before
    /// it returns every command it started has been killed and reaped; `beforeKill` runs
    /// first (unregistering on stop).
    func run(until stop: StopSignal, beforeKill: @Sendable (End) async -> Void) async -> End {
        await withTaskGroup(of: End?.self) { group in
            for _ in 0..<command.concurrency {
                group.addTask {
                    for await call in self.queue { await self.perform(call) }
                    return nil
                }
            }
            group.addTask {
                for await request in self.client.requests { self.accept(request) }
                return .disconnected
            }
            group.addTask {
                for await notification in self.client.notifications {
                    switch notification.method {
                    case "$/cancelRequest":
                        self.cancel(notification.params["id"], reason: .cancelled)
                    case "shutdown":
                        return .shutdown
                    default:
                        continue
                    }
                }
                return .disconnected
            }
            group.addTask {
                await stop.wait()
                return .stopped
            }
            var end = End.disconnected
            while let next = await group.next() {
                if let next {
                    end = next
                    break
                }
            }
            closing.store(true, ordering: .sequentiallyConsistent)
            await beforeKill(end)
            enqueue.finish()
            let inFlight = calls.withLock { $0.values }
            for control in inFlight { control.stop(.ended) }
            group.cancelAll()
            while await group.next() != nil {}
            return end
        }
    }

    /// Queues a call (or answers a request this command does not serve).
    private func accept(_ request: IncomingRequest) {
        let label = request.id.stringValue ?? JSONWriter.string(request.id)
        guard request.method == "stage.handle" else {
            client.reply(to: request.id, error: RPCError.methodNotFound(request.method))
            return
        }
        // Stopping: no reply, the daemon hands the call to another member when this one goes.
        guard !closing.load(ordering: .sequentiallyConsistent) else { return }
        var deadline = ContinuousClock.now.advanced(by: timeout)
        if let text = request.params["deadline"]?.stringValue, let date = RFC3339.date(from: text) {
            let remaining = date.timeIntervalSinceNow
            let callDeadline = ContinuousClock.now.advanced(by: .milliseconds(Int64(max(0, remaining) * 1000)))
            deadline = min(deadline, callDeadline)
        }
        let control = StageCallControl()
        calls.withLock { $0[JSONWriter.string(request.id)] = control }
        enqueue.yield(PendingCall(request: request, control: control, deadline: deadline, label: label))
    }

    private func cancel(_ id: JSONValue?, reason: StageCallControl.Stop) {
        guard let id else { return }
        let control = calls.withLock { $0[JSONWriter.string(id)] }
        control?.stop(reason)
    }

    /// Runs the command for one call and replies, unless the call was stopped first.
    private func perform(_ call: PendingCall) async {
        let key = JSONWriter.string(call.request.id)
        defer { _ = calls.withLock { $0.removeValue(forKey: key) } }
        let prefix = "[\(call.label)] "
        if ContinuousClock.now >= call.deadline { call.control.stop(.deadline) }
        if let reason = call.control.stopReason {
            if reason != .ended { Console.err(prefix + reason.notice(started: false)) }
            return
        }
        let input = JSONWriter.encode(call.request.params) + [UInt8(ascii: "\n")]
        let process: HandlerProcess
        do {
            process = try HandlerProcess.spawn(
                command.arguments, input: input, outputLimit: command.outputLimit, stderrPrefix: prefix)
        } catch {
            reply(call, prefix: prefix, failure: "cannot run \(command.arguments[0]): \(error)")
            return
        }
        call.control.attach(process)
        let timer = Task {
            try? await Task.sleep(until: call.deadline, clock: .continuous)
            if !Task.isCancelled { call.control.stop(.deadline) }
        }
        let outcome = await process.finished()
        timer.cancel()
        if let reason = call.control.stopReason {
            if reason != .ended { Console.err(prefix + reason.notice(started: true)) }
            return
        }
        if outcome.overflowed {
            reply(call, prefix: prefix, failure: "output over \(command.outputLimit) bytes")
            return
        }
        let detail = outcome.firstStderrLine.map { ": " + Format.truncate($0, to: 200) } ?? ""
        switch outcome.termination {
        case .exited(0):
            do {
                let result = try JSONParser.parse(outcome.stdout)
                client.reply(to: call.request.id, result: result)
            } catch {
                let text = String(decoding: outcome.stdout, as: UTF8.self)
                let firstLine = text.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init)
                let shown = firstLine.map { Format.truncate($0, to: 200) } ?? "no output"
                reply(call, prefix: prefix, failure: "not JSON: \(shown)")
            }
        case .exited(let code):
            reply(call, prefix: prefix, failure: "command exited \(code)\(detail)")
        case .signaled(let signal):
            reply(call, prefix: prefix, failure: "command killed by signal \(signal)\(detail)")
        }
    }

    /// The error reply `{"code": -32000, "message", "data": {"type": "handler_error"}}`.
    private func reply(_ call: PendingCall, prefix: String, failure message: String) {
        Console.err(prefix + "error reply: " + message)
        client.reply(
            to: call.request.id, error: RPCError(code: -32000, message: message, type: "handler_error"))
    }
}

/// One call's fate, shared by the task running it, its deadline timer and the cancel path:
/// the first stop wins and kills the call's command, if it runs.
final class StageCallControl: Sendable {
    enum Stop: Sendable, Equatable {
        /// `$/cancelRequest` from the daemon.
        case cancelled
        /// The call's deadline passed.
        case deadline
        /// The session ended (disconnect, shutdown, stop).
        case ended

        func notice(started: Bool) -> String {
            switch self {
            case .cancelled: started ? "cancelled by the daemon: command killed" : "cancelled by the daemon"
            case .deadline: started ? "deadline passed: command killed" : "deadline passed before a slot was free"
            case .ended: started ? "connection ended: command killed" : "connection ended"
            }
        }
    }

    private struct State {
        var stop: Stop?
        var process: HandlerProcess?
    }

    private let state = Mutex(State())

    var stopReason: Stop? { state.withLock { $0.stop } }

    func stop(_ reason: Stop) {
        let process = state.withLock { s -> HandlerProcess? in
            guard s.stop == nil else { return nil }
            s.stop = reason
            return s.process
        }
        process?.terminate()
    }

    /// Attaches the call's command; kills it at once when the call is already stopped.
    func attach(_ process: HandlerProcess) {
        let stopped = state.withLock { s in
            s.process = process
            return s.stop != nil
        }
        if stopped { process.terminate() }
    }
}
