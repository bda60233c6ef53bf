//! File formats: GLB and OBJ export, OBJ and glTF import. Byte buffers in, byte buffers out: the
//! kernel does no I/O.
