import Foundation
import NIOCore
import Synchronization
import TradewireJSON
import TradewirePipeline
import TradewireRPC

/// A group of remote members serving one stage, as the pipeline sees it: each call goes to
/// one member as a `stage.handle` request, under the earlier of the group's timeout and
/// the iteration's deadline (PROTOCOL §9).
struct RemoteStageGroup: StageHandler {
    let registry: StageRegistry
    let key: StageGroupKey
    let options: StageGroupOptions

    var stage: PipelineStage { key.stage }
    var name: String { key.name }
    var mode: StageMode { options.mode }
    var onFailure: StageFailurePolicy { options.onFailure }

    func handle(_ call: StageCall) async -> Result<StageReply, StageFailure> {
        let start = ContinuousClock.now
        let deadline = min(call.deadline, start.advanced(by: .milliseconds(options.timeoutMilliseconds)))
        // The member is told the call's own deadline (the earlier of the two).
        var call = call
        call.deadline = deadline
        call.deadlineDate = Date().addingTimeInterval((deadline - start).inSeconds)
        let sent = call
        let result = await Self.callLocalMember(
            registry: registry, key: key, deadline: deadline, timeoutMilliseconds: options.timeoutMilliseconds,
            localOnly: false, forwarded: { forwarded(sent) },
            request: { id, registration in
                request(id: id, registration: registration, call: sent)
            }
        ).flatMap { json -> Result<StageReply, StageFailure> in
            do throws(JSONDecodingError) {
                return .success(StageReply(try StageValue.decode(json, for: stage)))
            } catch {
                return .failure(StageFailure(.malformed, "result\(error.path): \(error.message)"))
            }
        }
        let elapsed = ContinuousClock.now - start
        let milliseconds =
            Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        registry.record(key, milliseconds: milliseconds, failure: result.failure)
        return result
    }

    /// Calls one member of `key` with the line `request` builds (its id, its registration),
    /// handing the call to another member when its member disconnects. Unless `localOnly`,
    /// a member on another cluster node may take it, sent `forwarded()`.
    static func callLocalMember(
        registry: StageRegistry, key: StageGroupKey, deadline: ContinuousClock.Instant, timeoutMilliseconds: Int?,
        localOnly: Bool, forwarded: () -> String = { "" },
        request: (_ id: String, _ registration: String) -> [UInt8]
    ) async -> Result<JSONValue, StageFailure> {
        let stage = key.stage
        let name = key.name
        var handedOff = false
        while true {
            let registration: String
            let connection: ServerConnection
            switch registry.acquire(key, localOnly: localOnly) {
            case .peer(let node):
                defer { registry.endPeer(key, node: node) }
                guard let caller = registry.peerCaller.withLock({ $0 }) else {
                    return .failure(StageFailure(.noMember, "no member of \(stage.rawValue)/\(name) is connected"))
                }
                let remaining = deadline - ContinuousClock.now
                guard remaining > .zero else {
                    return .failure(StageFailure(.timeout, "the deadline passed before the call was sent"))
                }
                return await caller(node, stage, forwarded(), remaining)
            case .noMember where handedOff:
                return .failure(
                    StageFailure(
                        .disconnected, "the member disconnected during the call and no other member is connected"))
            case .noMember:
                return .failure(StageFailure(.noMember, "no member of \(stage.rawValue)/\(name) is connected"))
            case .busy(let waiter):
                let wake = await waiter.wait(until: deadline, timedOut: .timedOut, cancelled: .cancelled)
                registry.forget(waiter, in: key)
                switch wake {
                case .changed: continue
                case .timedOut where handedOff:
                    return .failure(
                        StageFailure(
                            .disconnected,
                            "the member disconnected during the call and no other member was free before the deadline"))
                case .timedOut:
                    return .failure(StageFailure(.timeout, "no member of \(name) had a free slot before the deadline"))
                case .cancelled:
                    return .failure(StageFailure(.timeout, "the iteration was abandoned"))
                }
            case .member(let r, let c):
                registration = r
                connection = c
            }
            let answer = Rendezvous<StageCallAnswer>()
            let id = registry.begin(key, registration: registration, connectionID: connection.id, answer: answer)
            let line = request(id, registration)
            // One hop to the member's event loop arms the deadline and queues the request.
            let eventLoop = connection.eventLoop
            eventLoop.execute {
                answer.arm(on: eventLoop, deadline: deadline, timedOut: .timedOut)
                connection.outbox.enqueue(line: line)
            }
            let outcome = await answer.wait(cancelled: .cancelled)
            let cancelled: Bool
            switch outcome {
            case .timedOut, .cancelled:
                cancelled = true
                connection.notify(method: "$/cancelRequest", params: ["id": JSONValue(id)])
            default:
                cancelled = false
            }
            registry.end(id, key, registration: registration, cancelled: cancelled)
            switch outcome {
            case .reply(.result(let json)):
                return .success(json)
            case .reply(.error(let code, let message)):
                return .failure(StageFailure(.error, code.map { "\(message) (code \($0))" } ?? message))
            case .timedOut:
                let within =
                    timeoutMilliseconds.map { "within the deadline (timeout_ms \($0))" } ?? "within the deadline"
                return .failure(StageFailure(.timeout, "no reply from \(registration) \(within)"))
            case .cancelled:
                return .failure(StageFailure(.timeout, "the iteration was abandoned"))
            case .tooLarge(let limit):
                return .failure(StageFailure(.malformed, "the reply exceeded the \(limit)-byte message limit"))
            case .disconnected:
                if !handedOff && ContinuousClock.now < deadline {
                    handedOff = true
                    continue
                }
                return .failure(StageFailure(.disconnected, "member \(registration) disconnected during the call"))
            }
        }
    }

    /// The call for a member on another cluster node: `{"stage", "name", "mode", "call":
    /// {…the stage.handle fields}}`.
    private func forwarded(_ call: StageCall) -> String {
        var writer = JSONWriter(reservingCapacity: 1024)
        writer.beginObject()
        writer.field("stage", stage.rawValue)
        writer.field("name", name)
        writer.field("mode", mode.rawValue)
        writer.key("call")
        writer.beginObject()
        call.encodeFields(to: &writer)
        writer.endObject()
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// `{"jsonrpc":"2.0","id":"c-…","method":"stage.handle","params":{…}}`.
    private func request(id: String, registration: String, call: StageCall) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 1024)
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("id", id)
        writer.field("method", "stage.handle")
        writer.key("params")
        writer.beginObject()
        writer.field("registration", registration)
        writer.field("name", name)
        writer.field("mode", mode.rawValue)
        call.encodeFields(to: &writer)
        writer.endObject()
        writer.endObject()
        return writer.bytes
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
