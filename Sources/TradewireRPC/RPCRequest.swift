import TradewireJSON

/// One JSON-RPC request or notification, already checked for shape.
public struct RPCRequest: Sendable {
    /// The id to echo; nil for a notification (which is never answered).
    public var id: JSONValue?
    public var method: String
    /// By-name params: a missing `params`, `{}` and `[]` all become an empty object.
    public var params: JSONObject
    /// `params.data` as compact bytes, when the parser kept it so (``RPCRequest/rawParam``):
    /// `params` then holds `null` in its place. A published event's data is only forwarded,
    /// so it is never parsed into a tree and written out again.
    public var rawData: RawJSON?

    /// The one parameter the parser keeps as bytes rather than a tree.
    public static let rawParam = "data"

    public init(id: JSONValue?, method: String, params: JSONObject = [:], rawData: RawJSON? = nil) {
        self.id = id
        self.method = method
        self.params = params
        self.rawData = rawData
    }

    public var isNotification: Bool { id == nil }

    /// A reader over params with JSON Pointer paths.
    public var reader: JSONObjectReader { JSONObjectReader(object: params, path: "") }
}

/// One line from a client, parsed.
public enum RPCIncoming: Sendable {
    /// A single entry (request, notification, or an invalid one with the id to answer with).
    case single(RPCEntry)
    /// A batch of entries.
    case batch([RPCEntry])
    /// A message that gets exactly one error response (parse error, empty or oversized batch).
    case failure(RPCError)
}

/// A batch member or a lone message.
public enum RPCEntry: Sendable {
    case request(RPCRequest)
    /// Not a valid request; answered with this error and id (null when unknown).
    case invalid(RPCError, id: JSONValue)
    /// A well-formed notification that cannot run; notifications are never answered.
    case invalidNotification(RPCError)
    /// A peer's reply to a request the daemon sent it (never answered: a reply to a reply
    /// does not exist).
    case reply(RPCReply)
}

/// A response object received from a peer: `{"jsonrpc":"2.0","id":…,"result"|"error":…}`.
public struct RPCReply: Sendable {
    public enum Outcome: Sendable {
        case result(JSONValue)
        /// The error object's code (nil when not an integer) and message.
        case error(code: Int?, message: String)
    }

    public var id: JSONValue
    public var outcome: Outcome
}

/// Turns one framed line into requests (PROTOCOL §2 and §8).
public enum RPCMessageParser {
    /// Largest batch accepted.
    public static let maximumBatch = 1000

    public static func parse(_ line: some Collection<UInt8>) -> RPCIncoming {
        let json: JSONValue
        let rawData: RawJSON?
        do {
            (json, rawData) = try JSONParser.parse(line, keepingRaw: ("params", RPCRequest.rawParam))
        } catch {
            return .failure(.parseError(error.description))
        }
        switch json {
        case .array(let elements):
            guard !elements.isEmpty else { return .failure(.invalidRequest("empty batch")) }
            guard elements.count <= maximumBatch else {
                return .failure(.batchTooLarge(count: elements.count, limit: maximumBatch))
            }
            return .batch(elements.map { entry($0) })
        default:
            return .single(entry(json, rawData: rawData))
        }
    }

    /// Checks one request object (`rawData`: its `params.data`, kept as bytes by the parser).
    public static func entry(_ json: JSONValue, rawData: RawJSON? = nil) -> RPCEntry {
        guard case .object(let object) = json else {
            return .invalid(.invalidRequest("expected a request object, got \(json.typeName)"), id: .null)
        }
        // The id to answer an invalid request with: echoed when it is a string, number or null.
        let rawID = object["id"]
        let answerID: JSONValue
        switch rawID {
        case .string?, .number?, .null?: answerID = rawID!
        default: answerID = .null
        }
        guard object["jsonrpc"] == "2.0" else {
            return .invalid(.invalidRequest("\"jsonrpc\" must be \"2.0\""), id: answerID)
        }
        if object["method"] == nil, let rawID, object["result"] != nil || object["error"] != nil {
            return reply(object, id: rawID)
        }
        guard case .string(let method)? = object["method"] else {
            return .invalid(.invalidRequest("\"method\" must be a string"), id: answerID)
        }
        if let rawID {
            switch rawID {
            case .string, .number, .null: break
            default: return .invalid(.invalidRequest("\"id\" must be a string, a number or null"), id: .null)
            }
        }
        var params = JSONObject()
        switch object["params"] {
        case nil:
            break
        case .object(let p)?: params = p
        case .array(let a)?:
            guard a.isEmpty else {
                // Valid JSON-RPC, but this protocol takes params by name only.
                let error = RPCError.invalidParams(path: "", "params must be an object")
                return rawID == nil ? .invalidNotification(error) : .invalid(error, id: answerID)
            }
        default:
            return .invalid(.invalidRequest("\"params\" must be an object or an array"), id: answerID)
        }
        return .request(RPCRequest(id: rawID, method: method, params: params, rawData: rawData))
    }

    /// A peer's response object.
    private static func reply(_ object: JSONObject, id: JSONValue) -> RPCEntry {
        if let error = object["error"] {
            let code = error["code"]?.intValue
            let message = error["message"]?.stringValue ?? "error without a message"
            return .reply(RPCReply(id: id, outcome: .error(code: code, message: message)))
        }
        return .reply(RPCReply(id: id, outcome: .result(object["result"] ?? .null)))
    }
}
