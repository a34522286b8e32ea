import Foundation
import TradewireBus
import TradewireJSON

/// One recorded event as the dashboard reads it, from the journal or from the bus's history.
struct PipelineRecord: Sendable {
    var seq: Int
    var type: String
    var timestamp: Date
    var data: JSONValue
    var metadata: JSONObject

    var iterationID: String? { metadata["iteration_id"]?.stringValue }
    var iteration: Int? { metadata["iteration"]?.intValue }
    var isDryRun: Bool { metadata["dry_run"]?.boolValue == true }

    init(_ record: JournalRecord) {
        seq = record.seq
        type = record.type
        timestamp = record.timestamp
        data = (try? JSONParser.parse(record.data)) ?? .null
        metadata = (try? JSONParser.parse(record.metadata))?.objectValue ?? [:]
    }

    init(_ event: Event) {
        seq = event.seq
        type = event.type
        timestamp = event.timestamp
        data = (try? JSONParser.parse(Array(event.dataJSON))) ?? .null
        metadata = event.metadata
    }
}

/// Where recorded events are read: the journal when the daemon keeps one, else the bus's
/// in-memory history (`--ephemeral`). Reads are bounded by their `limit` or by the iteration
/// they ask for.
struct PipelineRecords: Sendable {
    let bus: EventBus
    let journal: (any EventJournal)?

    /// `"journal"` or `"history"`.
    var sourceName: String { journal == nil ? "history" : "journal" }

    /// The newest `limit` records of `type`, oldest first.
    func newest(_ type: String, limit: Int) throws(JournalError) -> [PipelineRecord] {
        if let journal {
            return try journal.read(JournalQuery(pattern: type, limit: limit, newest: true)).map(PipelineRecord.init)
        }
        let pattern = try? EventPattern(type)
        return bus.history(matching: pattern, limit: limit).records.map { PipelineRecord($0.event) }
    }

    /// The records of `types` that `iterationID` published, oldest first.
    func records(ofIteration iterationID: String, types: [String]) throws(JournalError) -> [PipelineRecord] {
        if let journal {
            return try journal.records(ofIteration: iterationID, types: types).map(PipelineRecord.init)
        }
        let wanted = Set(types)
        return bus.history().records.compactMap { record in
            let event = record.event
            guard wanted.contains(event.type), event.metadata["iteration_id"]?.stringValue == iterationID else {
                return nil
            }
            return PipelineRecord(event)
        }
    }
}
