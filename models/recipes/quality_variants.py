#!/usr/bin/env python3
"""Quality-model variants measured on the DCLM human labels (models/README.md, "Tried and
not adopted"): the recipe's quality data as is (`base`), plus the READMEs of the
workspace's MIT/Apache dependencies as English reference text (`readme`), and that without
the movie reviews (`readme_nomovie`); each trained with C = 0.5 and C = 4 on all pieces and
scored on the 326 labelled pages. Nothing is written to models/assets.

Usage: python3 models/recipes/quality_variants.py CORPUS_BIN DATA_DIR VARIANT
(same Python packages as train_classifiers.py; run `cargo fetch --locked` for `readme`)
"""
import sys, os, glob, re, tomllib, importlib.util, tempfile
import numpy as np
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location('r', os.path.join(here, 'train_classifiers.py')); R = importlib.util.module_from_spec(spec); spec.loader.exec_module(R)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
corpus = os.path.abspath(sys.argv[1]); d = sys.argv[2]
wd = tempfile.mkdtemp()
rows, evals = R.quality_data(d, corpus, wd)
def crate_readmes():
    reg=sorted(glob.glob(os.path.expanduser('~/.cargo/registry/src/*/')))
    lock=tomllib.load(open(os.path.join(here, '../../Cargo.lock'),'rb'))['package']
    out=[]
    for p in sorted(lock,key=lambda p:(p['name'],p['version'])):
        if 'registry' not in p.get('source',''): continue
        dd=[x for r in reg if os.path.isdir(x:=f"{r}{p['name']}-{p['version']}")]
        if not dd: continue
        lic=tomllib.load(open(f'{dd[0]}/Cargo.toml','rb'))['package'].get('license','')
        if not isinstance(lic,str) or not re.search(r'\b(MIT|Apache-2\.0)\b',lic): continue
        for f in sorted(glob.glob(f'{dd[0]}/README*')):
            t=open(f,errors='replace').read()
            # drop code blocks, badges, html
            t=re.sub(r'```.*?```','',t,flags=re.S)
            t=re.sub(r'!?\[([^\]]*)\]\([^)]*\)',r'\1',t)
            t=re.sub(r'<[^>]+>','',t)
            lines=[l.strip('# ').strip() for l in t.splitlines()]
            lines=[l for l in lines if len(l)>40]
            if sum(map(len,lines))>300: out.append((p['name'],'\n'.join(lines)))
    return out
variant=sys.argv[3] if len(sys.argv)>3 else 'base'
if variant in ('readme','readme_nomovie'):
    for name,t in crate_readmes():
        for c in R.chunks(t):
            rows.append({"text":c,"label":1,"key":'crate-'+name,"lang":"en","set":"crate_readme"})
if variant=='readme_nomovie':
    rows=[r for r in rows if r['set']!='movie_reviews']
print(variant, {s:sum(1 for r in rows if r['set']==s) for s in sorted({r['set'] for r in rows})})
X,_,_=R.features(corpus,[r['text'] for r in rows],wd,'q')
y=np.array([r['label'] for r in rows])
cells={}
for r in rows: cells[(r['lang'],r['label'])]=cells.get((r['lang'],r['label']),0)+1
w=np.array([len(rows)/(len(cells)*cells[(r['lang'],r['label'])]) for r in rows])
E=evals['dclm_human_labels']; Xe,_,_=R.features(corpus,[r['text'] for r in E],wd,'e'); ye=[r['label'] for r in E]
for C in [0.5,4.0]:
    clf=LogisticRegression(C=C,max_iter=2000).fit(X,y,sample_weight=w)
    pe=clf.predict_proba(Xe)[:,1]
    print(variant,'C',C,'DCLM AUC',round(roc_auc_score(ye,pe),4))
