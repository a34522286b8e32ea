import Foundation
import Synchronization
import TradewireJSON

/// The data an event carries. In-process handlers get the typed value; remote subscribers
/// and history get its JSON, encoded at most once per event.
public protocol EventPayload: JSONEncodable {
    /// `object|array|string|number|boolean|null`, as recorded in history.
    var jsonTypeName: String { get }
    /// About how many bytes the JSON encoding takes (for outbound budgets, before encoding).
    var estimatedJSONBytes: Int { get }
}

extension EventPayload {
    public var estimatedJSONBytes: Int { 256 }
}

extension JSONValue: EventPayload {
    public var jsonTypeName: String { typeName }

    /// Close to the compact encoding's size (escapes aside), without encoding.
    public var estimatedJSONBytes: Int {
        switch self {
        case .null: 4
        case .bool(let b): b ? 4 : 5
        case .number(let n): n.text.utf8.count
        case .string(let s): s.utf8.count + 2
        case .array(let elements): elements.reduce(2) { $0 + $1.estimatedJSONBytes + 1 }
        case .object(let object):
            object.members.reduce(2) { $0 + $1.key.utf8.count + 4 + $1.value.estimatedJSONBytes }
        }
    }
}

extension RawJSON: EventPayload {
    public var jsonTypeName: String { typeName }
    /// Exact: the bytes are the encoding.
    public var estimatedJSONBytes: Int { bytes.count }
}

/// One published event. Immutable apart from its lazily computed, shared JSON encodings.
public final class Event: Sendable {
    /// Daemon-wide sequence number: strictly increasing from 1, never reused.
    public let seq: Int
    public let type: String
    public let timestamp: Date
    public let payload: any EventPayload
    public let metadata: JSONObject
    /// `timestamp` as a quoted RFC 3339 JSON string, formatted once (held inline).
    public let timestampText: RFC3339Text
    private let cache: Mutex<EncodingCache>

    private struct EncodingCache {
        /// The event object, and where its `data` value sits inside it.
        var event: [UInt8]?
        var dataRange: Range<Int> = 0..<0
    }

    public convenience init(seq: Int, type: String, timestamp: Date, payload: any EventPayload, metadata: JSONObject) {
        self.init(
            seq: seq, type: type, timestamp: timestamp, timestampText: RFC3339Text(timestamp), payload: payload,
            metadata: metadata)
    }

    init(
        seq: Int, type: String, timestamp: Date, timestampText: RFC3339Text, payload: any EventPayload,
        metadata: JSONObject
    ) {
        self.seq = seq
        self.type = type
        self.timestamp = timestamp
        self.timestampText = timestampText
        self.payload = payload
        self.metadata = metadata
        self.cache = Mutex(EncodingCache())
    }

    /// The typed payload, when it is a `T`.
    public func data<T>(as type: T.Type) -> T? { payload as? T }

    /// The encoded size when the event was already encoded, else an estimate.
    public var knownOrEstimatedJSONBytes: Int {
        if let known = cache.withLock({ $0.event?.count }) { return known }
        return 96 + type.utf8.count + payload.estimatedJSONBytes + JSONValue.object(metadata).estimatedJSONBytes
    }

    /// The payload as compact JSON: a slice of the shared event encoding (no second encode).
    public var dataJSON: ArraySlice<UInt8> {
        let (event, range) = encoded
        return event[range]
    }

    /// The metadata object as compact JSON: a slice of the shared event encoding.
    public var metadataJSON: ArraySlice<UInt8> {
        let (event, range) = encoded
        // `…data,"metadata":{…}}`: skip `,"metadata":` (12 bytes) and the closing brace.
        return event[(range.upperBound + 12)..<(event.count - 1)]
    }

    /// The event object of PROTOCOL §3 as compact JSON:
    /// `{"seq","event_type","timestamp","data","metadata"}`. Computed once, then shared by
    /// every subscriber and by history.
    public var json: [UInt8] { encoded.event }

    private var encoded: (event: [UInt8], range: Range<Int>) {
        if let cached = cache.withLock({ c in c.event.map { ($0, c.dataRange) } }) { return cached }
        var writer = JSONWriter(
            // The keys, the seq and the timestamp take up to 116 bytes: one allocation, no growth.
            reservingCapacity: 120 + type.utf8.count + payload.estimatedJSONBytes
                + (metadata.isEmpty ? 2 : JSONValue.object(metadata).estimatedJSONBytes))
        writer.beginObject()
        writer.plainKey("seq")
        writer.write(seq)
        writer.plainKey("event_type")
        writer.write(type)
        writer.plainKey("timestamp")
        writer.writeRaw(timestampText)
        writer.plainKey("data")
        let start = writer.bytes.count
        payload.encodeJSON(to: &writer)
        let range = start..<writer.bytes.count
        writer.plainKey("metadata")
        metadata.encodeJSON(to: &writer)
        writer.endObject()
        let bytes = writer.bytes
        return cache.withLock { cache in
            if let existing = cache.event { return (existing, cache.dataRange) }
            cache.event = bytes
            cache.dataRange = range
            return (bytes, range)
        }
    }
}

extension Event: JSONEncodable {
    public func encodeJSON(to writer: inout JSONWriter) { writer.writeRaw(json) }
}

/// A history entry: the event plus the facts recorded at publish time.
public struct HistoryRecord: Sendable {
    public let event: Event
    /// Client subscriptions that matched when the event was published.
    public let subscriberCount: Int
    /// The cluster node that accepted the publish (nil outside a cluster).
    public let node: String?

    public init(event: Event, subscriberCount: Int, node: String? = nil) {
        self.event = event
        self.subscriberCount = subscriberCount
        self.node = node
    }

    /// The record object of PROTOCOL §3 (the event's keys plus `subscriber_count` and
    /// `data_type`); `includeData: false` leaves the `data` key out.
    public func encodeJSON(to writer: inout JSONWriter, includeData: Bool) {
        writer.beginObject()
        writer.field("seq", event.seq)
        writer.field("event_type", event.type)
        writer.key("timestamp")
        writer.writeRaw(event.timestampText)
        if includeData {
            writer.key("data")
            writer.writeRaw(event.dataJSON)
        }
        writer.field("metadata", event.metadata)
        writer.field("subscriber_count", subscriberCount)
        writer.field("data_type", event.payload.jsonTypeName)
        if let node { writer.field("node", node) }
        writer.endObject()
    }

}
