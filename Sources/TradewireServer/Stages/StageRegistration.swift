import TradewireJSON
import TradewirePipeline
import TradewireRPC

/// The options a group's members share (PROTOCOL §9): every member must give the same.
struct StageGroupOptions: Sendable, Equatable {
    var mode: StageMode
    var timeoutMilliseconds: Int
    var onFailure: StageFailurePolicy
    var durable: Bool
}

/// Identifies a group: connections that register the same stage and name form one.
struct StageGroupKey: Hashable, Sendable {
    var stage: PipelineStage
    var name: String
}

/// The answer to `register_stage`.
struct StageRegistration: Sendable, JSONEncodable {
    var registration: String
    var key: StageGroupKey
    var options: StageGroupOptions
    var members: Int

    func encodeJSON(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("registration", registration)
        writer.field("stage", key.stage.rawValue)
        writer.field("name", key.name)
        writer.field("mode", options.mode.rawValue)
        writer.field("timeout_ms", options.timeoutMilliseconds)
        writer.field("on_failure", options.onFailure.rawValue)
        writer.field("durable", options.durable)
        writer.field("members", members)
        writer.endObject()
    }
}

/// What a stage call's wait ended with.
enum StageCallAnswer: Sendable {
    case reply(RPCReply.Outcome)
    case timedOut
    /// The iteration was abandoned (its task cancelled).
    case cancelled
    case disconnected
    /// The member sent a line over the message limit while this was its only call.
    case tooLarge(limit: Int)
}

/// Wakes a call waiting for a free member slot.
enum SlotWake: Sendable {
    case changed, timedOut, cancelled
}

/// Counters of one group (`stages` in get_status).
struct StageGroupStatistics: Sendable {
    static let sampleCapacity = 1024
    var calls = 0
    var failures = 0
    var timeouts = 0
    var lateReplies = 0
    /// The latest call durations in milliseconds (a ring of ``sampleCapacity``).
    var durations: [Double] = []
    var nextSample = 0

    /// Counts a finished call.
    mutating func count(milliseconds: Double, failure: StageFailure?) {
        calls += 1
        record(milliseconds: milliseconds)
        if let failure {
            failures += 1
            if failure.reason == .timeout { timeouts += 1 }
        }
    }

    mutating func record(milliseconds: Double) {
        if durations.count < Self.sampleCapacity {
            durations.append(milliseconds)
        } else {
            durations[nextSample] = milliseconds
            nextSample = (nextSample + 1) % Self.sampleCapacity
        }
    }

    func percentile(_ p: Double) -> Double? {
        guard !durations.isEmpty else { return nil }
        let sorted = durations.sorted()
        let rank = Int((p * Double(sorted.count - 1)).rounded())
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}
