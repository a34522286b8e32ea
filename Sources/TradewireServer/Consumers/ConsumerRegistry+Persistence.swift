import Foundation
import Logging
import TradewireBus
import TradewireJSON

/// Consumers in the journal: two state documents, `consumers` (settings, position and the
/// unacknowledged seqs with their attempts) and `dead_letters`. Events are not copied: they
/// are read back from the journal by seq at start.
extension ConsumerRegistry {
    static let consumersKey = "consumers"
    static let deadLettersKey = "dead_letters"

    /// Writes both documents (nothing without a journal). Consistent per consumer: each is
    /// read under its own lock.
    func save() {
        guard let journal else { return }
        let states = all.map { $0.snapshot() }
        let consumers: [JSONValue] = states.map { state in
            let settings = state.settings
            return [
                "consumer": JSONValue(settings.name), "pattern": JSONValue(settings.pattern.text),
                "ack_wait_ms": JSONValue(settings.ackWaitMilliseconds), "max_deliver": JSONValue(settings.maxDeliver),
                "max_in_flight": JSONValue(settings.maxInFlight), "position": JSONValue(state.position),
                "unacked": .array(
                    state.unacked.values.sorted { $0.seq < $1.seq }.map { entry in
                        [
                            "seq": JSONValue(entry.seq), "type": JSONValue(entry.type),
                            "attempts": JSONValue(entry.attempts),
                            "last_error": entry.lastError.map { JSONValue($0) } ?? .null,
                            "first_failed": entry.firstFailed.map { JSONValue(RFC3339.string(from: $0)) } ?? .null,
                            "last_failed": entry.lastFailed.map { JSONValue(RFC3339.string(from: $0)) } ?? .null,
                        ]
                    }),
            ]
        }
        let letters = states.flatMap(\.deadLetters).map { Self.json($0, withEvent: false) }
        do {
            try journal.saveState(
                Self.consumersKey,
                JSONWriter.encode(
                    [
                        "version": 1, "next_dead_letter_id": JSONValue(deadLetterIDs.peek),
                        "consumers": .array(consumers),
                    ]
                        as JSONValue))
            try journal.saveState(
                Self.deadLettersKey, JSONWriter.encode(["dead_letters": .array(letters)] as JSONValue))
        } catch {
            logger.error("consumer.save_failed", metadata: ["error": "\(error)"])
        }
    }

    /// Brings back the consumers a journal holds: each resumes after its position, and what
    /// it had unacknowledged goes out again (attempts kept). Call once, before serving.
    public func restore() throws(JournalError) {
        guard let journal, let bytes = try journal.loadState(Self.consumersKey) else { return }
        guard let document = try? JSONParser.parse(bytes), let saved = document["consumers"]?.arrayValue else {
            logger.error("consumer.restore.unreadable")
            return
        }
        var lettersByConsumer: [String: [DeadLetter]] = [:]
        if let letterBytes = try journal.loadState(Self.deadLettersKey),
            let letters = (try? JSONParser.parse(letterBytes))?["dead_letters"]?.arrayValue
        {
            for letter in letters.compactMap(Self.deadLetter) {
                lettersByConsumer[letter.consumer, default: []].append(letter)
                deadLetterIDs.advance(past: letter.id)
            }
        }
        if let next = document["next_dead_letter_id"]?.intValue, next > 1 { deadLetterIDs.advance(past: next - 1) }
        for item in saved {
            guard let name = item["consumer"]?.stringValue, let patternText = item["pattern"]?.stringValue,
                let pattern = try? EventPattern(patternText), let position = item["position"]?.intValue
            else { continue }
            let settings = ConsumerSettings(
                name: name, pattern: pattern,
                ackWaitMilliseconds: item["ack_wait_ms"]?.intValue ?? ConsumerSettings.defaultAckWaitMilliseconds,
                maxDeliver: item["max_deliver"]?.intValue ?? ConsumerSettings.defaultMaxDeliver,
                maxInFlight: item["max_in_flight"]?.intValue ?? ConsumerSettings.defaultMaxInFlight)
            var entries: [ConsumerState.Entry] = []
            for saved in item["unacked"]?.arrayValue ?? [] {
                guard let seq = saved["seq"]?.intValue else { continue }
                entries.append(
                    ConsumerState.Entry(
                        event: try Self.event(seq, in: journal), seq: seq, type: saved["type"]?.stringValue ?? "",
                        attempts: saved["attempts"]?.intValue ?? 1, phase: .ready,
                        lastError: saved["last_error"]?.stringValue,
                        firstFailed: saved["first_failed"]?.stringValue.flatMap(RFC3339.date(from:)),
                        lastFailed: saved["last_failed"]?.stringValue.flatMap(RFC3339.date(from:))))
            }
            var letters = lettersByConsumer[name] ?? []
            for index in letters.indices { letters[index].event = try Self.event(letters[index].seq, in: journal) }
            let state = ConsumerState(settings: settings, position: position, unacked: entries, deadLetters: letters)
            restore(state)
            logger.info(
                "consumer.restored",
                metadata: [
                    "consumer": "\(name)", "seq": "\(position)", "consumer.unacked": "\(entries.count)",
                    "consumer.dead_letters": "\(letters.count)",
                ])
        }
    }

    /// The event with `seq`, if the journal still holds it.
    private static func event(_ seq: Int, in journal: any EventJournal) throws(JournalError) -> Event? {
        guard seq > 0 else { return nil }
        let records = try journal.read(JournalQuery(afterSeq: seq - 1, limit: 1))
        guard let record = records.first, record.seq == seq else { return nil }
        return Event(record: record)
    }

    /// A dead letter as the protocol shows it (with its event when asked and known).
    static func json(_ letter: DeadLetter, withEvent: Bool) -> JSONValue {
        var object: JSONObject = [
            "id": JSONValue(letter.id), "consumer": JSONValue(letter.consumer), "seq": JSONValue(letter.seq),
            "event_type": JSONValue(letter.eventType), "attempts": JSONValue(letter.attempts),
            "last_error": JSONValue(letter.lastError),
            "first_failed": JSONValue(RFC3339.string(from: letter.firstFailed)),
            "last_failed": JSONValue(RFC3339.string(from: letter.lastFailed)),
        ]
        if withEvent {
            object["event"] = letter.event.flatMap { try? JSONParser.parse($0.json) } ?? .null
        }
        return .object(object)
    }

    private static func deadLetter(_ value: JSONValue) -> DeadLetter? {
        guard let id = value["id"]?.intValue, let consumer = value["consumer"]?.stringValue,
            let seq = value["seq"]?.intValue
        else { return nil }
        return DeadLetter(
            id: id, consumer: consumer, seq: seq, eventType: value["event_type"]?.stringValue ?? "",
            attempts: value["attempts"]?.intValue ?? 0, lastError: value["last_error"]?.stringValue ?? "",
            firstFailed: value["first_failed"]?.stringValue.flatMap(RFC3339.date(from:)) ?? Date(),
            lastFailed: value["last_failed"]?.stringValue.flatMap(RFC3339.date(from:)) ?? Date(), event: nil)
    }
}
