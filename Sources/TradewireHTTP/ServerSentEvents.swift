import TradewireBus
import TradewireJSON

/// The `text/event-stream` framing of `/events` (PROTOCOL §12): each event is
/// `id: SEQ` and one `data:` line holding the Event JSON (the same bytes as a socket `event`
/// notification's `event`; compact JSON never holds a raw newline), then a blank line.
enum ServerSentEvents {
    /// Sent first: browsers reconnect one second after a stream ends.
    static let opening: [UInt8] = Array("retry: 1000\n\n".utf8)

    /// A comment line, which every client ignores, sent while a stream is idle.
    static let keepAlive: [UInt8] = Array(": keep-alive\n\n".utf8)

    /// `id: SEQ`, `data: EVENT`.
    static func append(_ event: Event, to bytes: inout [UInt8]) {
        bytes.append(contentsOf: "id: \(event.seq)\ndata: ".utf8)
        bytes.append(contentsOf: event.json)
        bytes.append(contentsOf: "\n\n".utf8)
    }

    /// An `events_dropped` event (no `id`, so a reconnection still resumes after the last
    /// event received): `{"count": null, "first_seq", "last_seq"}`, as the socket's notice.
    static func append(_ gap: ReplayGap, to bytes: inout [UInt8]) {
        var writer = JSONWriter(reservingCapacity: 64)
        writer.beginObject()
        writer.key("count")
        writer.writeNull()
        writer.field("first_seq", gap.firstSeq)
        writer.field("last_seq", gap.lastSeq)
        writer.endObject()
        bytes.append(contentsOf: "event: events_dropped\ndata: ".utf8)
        bytes.append(contentsOf: writer.bytes)
        bytes.append(contentsOf: "\n\n".utf8)
    }

    static func append(_ items: [EventStream.Item], to bytes: inout [UInt8]) {
        for item in items {
            switch item {
            case .event(let event): append(event, to: &bytes)
            case .gap(let gap): append(gap, to: &bytes)
            }
        }
    }

    /// The comment that closes a stream, saying why.
    static func closing(_ end: EventStream.End, budget: Int) -> [UInt8] {
        let why =
            switch end {
            case .behind: "fell more than \(budget) bytes behind; reconnect with Last-Event-ID to resume"
            case .replayLimit:
                "the replay stops after \(EventBus.maximumJournalReplay) events; reconnect with Last-Event-ID to go on"
            case .shutdown: "the daemon is shutting down"
            }
        return Array(": closed: \(why)\n\n".utf8)
    }
}
