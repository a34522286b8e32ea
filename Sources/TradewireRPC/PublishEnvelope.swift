import TradewireJSON

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A `publish` request read by ``scan(_:)``, the fast path for the most frequent line a
/// daemon reads: `{"jsonrpc":"2.0","id":…,"method":"publish","params":{"event_type":…,"data":…}}`,
/// its members in any order.
///
/// The scan builds no tree and looks nothing up: `data` is copied as compact bytes, as
/// ``RPCMessageParser`` keeps it. It declines (nil) anything else: another member, a
/// repeated one, `metadata`, a null or absent id, an escape in a key or string, invalid
/// JSON. A declined line goes through ``RPCMessageParser`` and the method table as before,
/// so every error a client can get is the one it got before the fast path existed.
public struct PublishEnvelope: Sendable {
    /// A number or a string (never null: a request, not a notification).
    public var id: JSONValue
    public var eventType: String
    public var data: RawJSON

    /// The request, or nil when the line is not of the fast path's shape. `previousType`:
    /// the type of the connection's last publish, reused (no new string) when it repeats.
    public static func scan(_ line: UnsafeRawBufferPointer, previousType: String? = nil) -> PublishEnvelope? {
        JSONScanner.scan(line) { scanner in
            guard scanner.beginObject() else { return nil }
            var version = false
            var publish = false
            var id: JSONValue?
            var params: (eventType: String, data: RawJSON)?
            var first = true
            scanning: while true {
                switch scanner.nextKey(first: first) {
                case .invalid: return nil
                case .end: break scanning
                case .key(let key):
                    first = false
                    if key.equals("jsonrpc") {
                        guard !version, let value = scanner.plainString(), value.equals("2.0") else { return nil }
                        version = true
                    } else if key.equals("method") {
                        guard !publish, let value = scanner.plainString(), value.equals("publish") else { return nil }
                        publish = true
                    } else if key.equals("id") {
                        guard id == nil, let value = Self.id(&scanner) else { return nil }
                        id = value
                    } else if key.equals("params") {
                        guard params == nil, let value = Self.params(&scanner, previousType) else { return nil }
                        params = value
                    } else {
                        return nil
                    }
                }
            }
            guard version, publish, let id, let params, scanner.atEnd() else { return nil }
            return PublishEnvelope(id: id, eventType: params.eventType, data: params.data)
        }
    }

    private static func id(_ scanner: inout JSONScanner) -> JSONValue? {
        if let text = scanner.plainString() { return .string(String(decoding: text, as: UTF8.self)) }
        return scanner.number().map { .number($0) }
    }

    /// `{"event_type":"…","data":…}`, both present, nothing else.
    private static func params(_ scanner: inout JSONScanner, _ previousType: String?) -> (String, RawJSON)? {
        guard scanner.beginObject() else { return nil }
        var eventType: String?
        var data: RawJSON?
        var first = true
        while true {
            switch scanner.nextKey(first: first) {
            case .invalid: return nil
            case .end:
                guard let eventType, let data else { return nil }
                return (eventType, data)
            case .key(let key):
                first = false
                if key.equals("event_type") {
                    guard eventType == nil, let value = scanner.plainString() else { return nil }
                    eventType = Self.string(value, reusing: previousType)
                } else if key.equals("data") {
                    // The request object and params around it: depth 2, as the parser keeps it.
                    guard data == nil, let value = scanner.compactValue(depth: 2) else { return nil }
                    data = value
                } else {
                    return nil
                }
            }
        }
    }

    /// `bytes` as a string: `previous` when it spells the same.
    private static func string(_ bytes: UnsafeRawBufferPointer, reusing previous: String?) -> String {
        if var previous {
            let same = previous.withUTF8 { utf8 in
                utf8.count == bytes.count
                    && (utf8.count == 0 || memcmp(utf8.baseAddress!, bytes.baseAddress!, utf8.count) == 0)
            }
            if same { return previous }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
