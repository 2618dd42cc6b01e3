/* default-policy.c — the built-in default policy, as the JSON text a policy file
 * would contain, so that it can be printed and installed as it is. It goes through
 * the same parser as any file; nothing here is trusted more than a file would be. */
#include "policy.h"

/* One list entry per line, with a comment on who needs it. L() is the last entry
 * of a list (JSON allows no trailing comma). */
#define E(s) "    \"" s "\",\n"
#define L(s) "    \"" s "\"\n"

static const char builtin_json[] =
"{\n"
"  \"mode\": \"enforce\",\n"
"  \"pickle\": \"allowlist\",\n"
"  \"fail_severity\": \"high\",\n"
"  \"on_error\": \"deny\",\n"
"  \"require_license\": false,\n"
"  \"ignore_marks\": false,\n"
"  \"require_manifest\": false,\n"
"  \"hash_files\": false,\n"
"  \"watch\": [],\n"
"  \"manifests\": [],\n"
"  \"attestation_keys\": [],\n"
"  \"attestations\": [],\n"

/* The allowlist: exactly what torch.load(weights_only=True) accepts (torch 1.13's
 * torch/_weights_only_unpickler.py is the ground truth, plus the names later torch
 * releases added to it) and what numpy needs to rebuild arrays and scalars. Every
 * entry is exact: a wildcard here would admit whatever a later release of the
 * module adds. */
"  \"allow_globals\": [\n"
        /* state_dict() returns an OrderedDict (every torch checkpoint). */
        E("collections:OrderedDict")
        /* Tensor reconstruction, as Tensor.__reduce_ex__ and friends emit it. */
        E("torch._utils:_rebuild_tensor")
        E("torch._utils:_rebuild_tensor_v2")
        E("torch._utils:_rebuild_tensor_v3")              /* torch >= 2.3: uint16/32/64 and other new dtypes */
        E("torch._utils:_rebuild_parameter")
        E("torch._utils:_rebuild_parameter_with_state")   /* torch >= 2.0: Parameter with Python attributes */
        E("torch._utils:_rebuild_sparse_tensor")
        E("torch._utils:_rebuild_sparse_csr_tensor")
        E("torch._utils:_rebuild_qtensor")                /* quantized tensors */
        E("torch._utils:_rebuild_meta_tensor_no_storage")
        E("torch._utils:_rebuild_device_tensor_from_numpy")
        /* Tensors with Python attributes or of a subclass (torch >= 2.0 allows it; the
         * function and type it receives are globals checked on their own). */
        E("torch._tensor:_rebuild_from_type_v2")
        E("torch.nn.parameter:Parameter")
        E("torch.serialization:_get_layout")              /* sparse tensors carry their layout by name */
        E("torch:Size")
        E("torch:Tensor")
        E("torch:device")                                 /* torch >= 2.0 weights_only; device objects in checkpoints */
        /* Dtypes: a dtype pickles as its canonical name in module torch. */
        E("torch:bfloat16")
        E("torch:bool")
        E("torch:complex32")
        E("torch:complex64")
        E("torch:complex128")
        E("torch:float16")
        E("torch:float32")
        E("torch:float64")
        E("torch:int8")
        E("torch:int16")
        E("torch:int32")
        E("torch:int64")
        E("torch:uint8")
        E("torch:qint8")
        E("torch:qint32")
        E("torch:quint8")
        E("torch:quint4x2")
        E("torch:quint2x4")
        E("torch:uint16")                                 /* torch >= 2.3 */
        E("torch:uint32")
        E("torch:uint64")
        E("torch:float8_e4m3fn")                          /* torch >= 2.1 */
        E("torch:float8_e4m3fnuz")
        E("torch:float8_e5m2")
        E("torch:float8_e5m2fnuz")
        /* Quantization schemes of quantized tensors (torch >= 2.0 weights_only). */
        E("torch:per_tensor_affine")
        E("torch:per_tensor_symmetric")
        E("torch:per_channel_affine")
        E("torch:per_channel_symmetric")
        E("torch:per_channel_affine_float_qparams")
        /* Storage classes: the persistent id of every tensor names one
         * (torch._storage_classes in 1.13; torch.cuda.* in files saved from GPU by
         * old releases). */
        E("torch.storage:TypedStorage")
        E("torch.storage:UntypedStorage")
        E("torch:BFloat16Storage")
        E("torch:BoolStorage")
        E("torch:ByteStorage")
        E("torch:CharStorage")
        E("torch:ComplexDoubleStorage")
        E("torch:ComplexFloatStorage")
        E("torch:DoubleStorage")
        E("torch:FloatStorage")
        E("torch:HalfStorage")
        E("torch:IntStorage")
        E("torch:LongStorage")
        E("torch:ShortStorage")
        E("torch:QInt8Storage")
        E("torch:QInt32Storage")
        E("torch:QUInt8Storage")
        E("torch:QUInt4x2Storage")
        E("torch:QUInt2x4Storage")
        E("torch.cuda:BFloat16Storage")
        E("torch.cuda:BoolStorage")
        E("torch.cuda:ByteStorage")
        E("torch.cuda:CharStorage")
        E("torch.cuda:ComplexDoubleStorage")
        E("torch.cuda:ComplexFloatStorage")
        E("torch.cuda:DoubleStorage")
        E("torch.cuda:FloatStorage")
        E("torch.cuda:HalfStorage")
        E("torch.cuda:IntStorage")
        E("torch.cuda:LongStorage")
        E("torch.cuda:ShortStorage")
        /* Legacy tensor type classes (torch._tensor_classes in 1.13). */
        E("torch:BFloat16Tensor")
        E("torch:BoolTensor")
        E("torch:ByteTensor")
        E("torch:CharTensor")
        E("torch:DoubleTensor")
        E("torch:FloatTensor")
        E("torch:HalfTensor")
        E("torch:IntTensor")
        E("torch:LongTensor")
        E("torch:ShortTensor")
        E("torch.cuda:BFloat16Tensor")
        E("torch.cuda:BoolTensor")
        E("torch.cuda:ByteTensor")
        E("torch.cuda:CharTensor")
        E("torch.cuda:DoubleTensor")
        E("torch.cuda:FloatTensor")
        E("torch.cuda:HalfTensor")
        E("torch.cuda:IntTensor")
        E("torch.cuda:LongTensor")
        E("torch.cuda:ShortTensor")
        E("torch.sparse:BFloat16Tensor")
        E("torch.sparse:ByteTensor")
        E("torch.sparse:CharTensor")
        E("torch.sparse:DoubleTensor")
        E("torch.sparse:FloatTensor")
        E("torch.sparse:HalfTensor")
        E("torch.sparse:IntTensor")
        E("torch.sparse:LongTensor")
        E("torch.sparse:ShortTensor")
        E("torch.cuda.sparse:BFloat16Tensor")
        E("torch.cuda.sparse:ByteTensor")
        E("torch.cuda.sparse:CharTensor")
        E("torch.cuda.sparse:DoubleTensor")
        E("torch.cuda.sparse:FloatTensor")
        E("torch.cuda.sparse:HalfTensor")
        E("torch.cuda.sparse:IntTensor")
        E("torch.cuda.sparse:LongTensor")
        E("torch.cuda.sparse:ShortTensor")
        /* numpy arrays and scalars (ndarray.__reduce__, np.generic.__reduce__):
         * numpy 1.x names, then numpy 2 names. */
        E("numpy.core.multiarray:_reconstruct")
        E("numpy.core.multiarray:scalar")
        E("numpy._core.multiarray:_reconstruct")
        E("numpy._core.multiarray:scalar")
        E("numpy:ndarray")
        E("numpy:dtype")
        /* Protocol 2 pickles bytes as _codecs.encode(str, "latin1") (numpy array
         * data, bytearray; torch >= 2.0 weights_only allows it). */
        E("_codecs:encode")
        /* Plain containers and numbers that protocol 2 writes as REDUCE of a type
         * (Python 2 "__builtin__" is mapped to builtins by the scanner). */
        E("builtins:set")
        E("builtins:frozenset")
        E("builtins:bytearray")
        E("builtins:complex")
        L("builtins:slice")
"  ],\n"

/* The deny list: callables known to run code, read or write files, or reach the
 * network when unpickled (THREATS.md "Which globals are dangerous", plus the usual
 * suspects). It cannot be complete; in allowlist mode it only raises an unlisted
 * global from high to critical, and in denylist mode it is all there is. An entry
 * with a wildcard can be overridden for one name by an exact allow entry; an exact
 * entry here cannot be overridden at all. Deliberately absent: functools.partial
 * and functools.reduce (they call only what they are given, and that is a global
 * checked on its own; sklearn pickles use partial), builtins.memoryview and
 * builtins.type (no code of their own), copyreg._reconstructor (ordinary objects;
 * the class it builds is checked on its own). */
"  \"deny_globals\": [\n"
        /* Processes, shells and the OS interface. */
        E("os.*")
        E("posix.*")
        E("nt.*")
        E("subprocess.*")                  /* Python 2 "commands" maps here */
        E("_posixsubprocess.*")
        E("pty.*")
        E("platform:*")                    /* popen, _syscmd_ver, _syscmd_file run commands */
        E("multiprocessing.*")             /* util.spawnv_passfds */
        E("_multiprocessing.*")
        E("concurrent.*")
        E("asyncio.*")                     /* unix_events._UnixSubprocessTransport._start */
        E("_thread.*")
        E("threading.*")
        E("atexit.*")
        E("signal:*")
        E("sys:*")
        E("gc:*")
        E("uuid:_get_command_stdout")
        E("uuid:_popen")
        E("_osx_support.*")
        E("_aix_support.*")
        /* Running Python code: eval/exec and their wrappers in the stdlib. */
        E("builtins:eval")
        E("builtins:exec")
        E("builtins:compile")
        E("builtins:__import__")
        E("builtins:__build_class__")
        E("builtins:__loader__")           /* BuiltinImporter.load_module */
        E("builtins:breakpoint")
        E("builtins:input")
        E("builtins:open")
        /* Attribute and namespace access: the gadgets that turn any object into
         * any callable (__import__ + vars + operator.getitem, getattr chains). */
        E("builtins:getattr")
        E("builtins:setattr")
        E("builtins:delattr")
        E("builtins:globals")
        E("builtins:locals")
        E("builtins:vars")
        E("operator:*")                    /* attrgetter, methodcaller, itemgetter, getitem, call */
        E("_operator:*")                   /* operator.getitem pickles as _operator.getitem */
        E("types:FunctionType")            /* + marshal.loads: a function from bytes */
        E("types:LambdaType")
        E("types:CodeType")
        E("types:MethodType")
        E("marshal.*")
        E("runpy.*")
        E("code.*")                        /* InteractiveInterpreter.runcode */
        E("codeop.*")
        E("importlib.*")                   /* import_module */
        E("_imp.*")
        E("imp.*")
        E("zipimport.*")
        E("pkgutil.*")                     /* resolve_name */
        E("site.*")
        E("pdb.*")
        E("bdb.*")                         /* Bdb.run */
        E("cProfile.*")                    /* run */
        E("profile.*")
        E("timeit.*")
        E("trace.*")                       /* Trace.run */
        E("doctest.*")                     /* debug_script */
        E("idlelib.*")
        E("lib2to3.*")
        E("ctypes.*")
        E("_ctypes.*")
        E("cffi.*")
        E("pip.*")                         /* pip.main */
        E("ensurepip.*")
        E("setuptools.*")
        E("distutils.*")
        E("venv.*")
        /* Loaders of further pickles: a nested pickle escapes this scan. */
        E("pickle.*")
        E("_pickle.*")
        E("cPickle.*")
        E("dill.*")
        E("cloudpickle.*")
        E("shelve.*")
        E("joblib:load")
        E("joblib.numpy_pickle:load")
        E("pandas:read_pickle")
        E("pandas.io.pickle:read_pickle")
        E("numpy:load")
        E("numpy.lib.npyio:load")
        E("numpy.lib._npyio_impl:load")    /* numpy 2 */
        E("torch:load")
        E("torch.serialization:load")
        E("torch.serialization:_load")
        E("torch.storage:_load_from_bytes")
        /* Decoders that feed hidden payloads to the loaders above. */
        E("zlib:decompress")
        E("zlib:decompressobj")
        E("base64.*")
        E("binascii.*")
        E("codecs:decode")
        E("codecs:open")
        E("_codecs:decode")
        E("bz2.*")
        E("lzma.*")
        E("gzip.*")
        /* numpy and torch internals that run code or compilers. */
        E("numpy.testing.*")               /* _private.utils.runstring */
        E("numpy.f2py.*")
        E("numpy.distutils.*")
        E("numpy.ctypeslib.*")             /* load_library */
        E("torch._C.*")
        E("torch.hub.*")                   /* hub.load runs a repository's hubconf.py */
        E("torch.jit.*")                   /* unsupported_tensor_ops.execWrapper */
        E("torch.package.*")
        E("torch.fx.*")
        E("torch._dynamo.*")
        E("torch._inductor.*")
        E("torch.utils.collect_env.*")     /* run */
        E("torch.utils.bottleneck.*")
        E("torch.utils._config_module.*")  /* ConfigModule.load_config */
        E("torch.utils.cpp_extension.*")   /* load_inline compiles and loads code */
        E("torch.distributed.*")           /* rpc */
        /* Files. */
        E("io:open")
        E("io:open_code")
        E("io:FileIO")
        E("_io.*")                         /* FileIO */
        E("_pyio.*")
        E("shutil.*")
        E("tempfile.*")
        E("glob.*")
        E("fileinput.*")
        E("linecache.*")
        E("zipfile.*")
        E("tarfile.*")
        E("logging.*")                     /* FileHandler; config.listen evaluates */
        /* Network. */
        E("socket.*")
        E("_socket.*")
        E("socketserver.*")
        E("ssl.*")                         /* get_server_certificate */
        E("urllib.*")                      /* request.urlopen */
        E("urllib2.*")
        E("http.*")
        E("httplib.*")
        E("ftplib.*")
        E("smtplib.*")
        E("poplib.*")
        E("imaplib.*")                     /* IMAP4_stream runs a command */
        E("telnetlib.*")
        E("xmlrpc.*")
        E("webbrowser.*")
        E("requests.*")
        E("httpx.*")
        L("aiohttp.*")
"  ],\n"

/* License identifiers (safetensors __metadata__.license, GGUF general.license, …)
 * that forbid commercial use. Matching is case-insensitive after spaces and
 * underscores become '-', so "CC BY-NC 4.0" is cc-by-nc-4.0. Deliberately absent:
 * the llama2/llama3/gemma licenses (commercial use with conditions), openrail
 * variants (use restrictions, not non-commercial) and "other" (unknown is not
 * restricted; require_license is the tool for that). */
"  \"restricted_licenses\": [\n"
        E("cc-by-nc")
        E("cc-by-nc-*")
        E("cc-by-nc-sa-*")
        E("cc-by-nc-nd-*")
        E("*-nc-*")
        E("*-nc")
        E("*noncommercial*")
        E("*non-commercial*")
        E("*research-only*")
        E("*research*only*")
        E("*research*use*")             /* "research use license", "for research use" */
        E("*not*for*commercial*")       /* "not for commercial use" */
        E("agpl-*")
        E("agpl*")
        E("*affero*")                   /* "GNU Affero General Public License v3" */
        E("msr-la*")                    /* Microsoft Research License Agreement: non-commercial */
        E("deepfloyd-if-license")       /* research-only */
        E("intel-research")             /* Hub id: research use only */
        L("apple-amlr")                 /* Apple's ML research license: research only */
"  ]\n"
"}\n";

const char *policy_builtin_json(void) {
        return builtin_json;
}
