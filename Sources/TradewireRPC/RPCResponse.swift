import TradewireJSON

/// Writes JSON-RPC responses and notifications as single compact lines (without the newline).
public enum RPCResponse {
    public static func success(id: JSONValue, result: some JSONEncodable) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64)
        success(id: id, result: result, into: &writer)
        return writer.bytes
    }

    public static func success(id: JSONValue, result: some JSONEncodable, into writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("id", id)
        writer.field("result", result)
        writer.endObject()
    }

    /// Appends a success response whose result is already-encoded JSON.
    public static func success(id: JSONValue, rawResult: [UInt8]) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: rawResult.count + 48)
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("id", id)
        writer.key("result")
        writer.writeRaw(rawResult)
        writer.endObject()
        return writer.bytes
    }

    public static func failure(id: JSONValue, error: RPCError) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 128)
        failure(id: id, error: error, into: &writer)
        return writer.bytes
    }

    public static func failure(id: JSONValue, error: RPCError, into writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("id", id)
        writer.field("error", error.json)
        writer.endObject()
    }

    /// A server notification `{"jsonrpc":"2.0","method":…,"params":…}`.
    public static func notification(method: String, params: some JSONEncodable) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 96)
        writer.beginObject()
        writer.field("jsonrpc", "2.0")
        writer.field("method", method)
        writer.field("params", params)
        writer.endObject()
        return writer.bytes
    }

    /// Joins already-encoded responses into a batch array.
    public static func batch(_ responses: [[UInt8]]) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "[")]
        for (i, response) in responses.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes.append(contentsOf: response)
        }
        bytes.append(UInt8(ascii: "]"))
        return bytes
    }
}
