import Foundation
import Logging
import Synchronization
import TradewireJSON

/// One JSON object per log line on stderr (`--log-format json`):
/// `{"timestamp","level","label","message","metadata":{...}}`.
struct JSONLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    let label: String
    private static let lock = Mutex(())

    init(label: String) { self.label = label }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var fields = JSONObject()
        for key in merged.keys.sorted() { fields[key] = JSONValue("\(merged[key]!)") }
        let line: JSONValue = [
            "timestamp": JSONValue(RFC3339.string(from: Date())),
            "level": JSONValue(event.level.rawValue),
            "label": JSONValue(label),
            "message": JSONValue(event.message.description),
            "metadata": .object(fields),
        ]
        var bytes = JSONWriter.encode(line)
        bytes.append(UInt8(ascii: "\n"))
        Self.lock.withLock { _ in FileHandle.standardError.write(Data(bytes)) }
    }
}
